"""termlab: an ML glossary where every term runs.

The core pipeline (load -> resolve -> run demos -> render -> publish) lives in this
package and imports no MkDocs; ``mkdocs_plugin``, ``markdown_ext`` and ``cli`` are thin
adapters over it.
"""

__version__ = "0.1.0"
