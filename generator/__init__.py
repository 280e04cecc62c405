"""termlab: a glossary site generator where every term can run a demo.

The core pipeline (load -> resolve -> run demos -> render -> publish) lives in this
package and imports no MkDocs; ``mkdocs_plugin``, ``markdown_ext`` and ``cli`` are thin
adapters over it.
"""

__version__ = "0.1.0"
