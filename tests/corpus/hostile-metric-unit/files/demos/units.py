def run(demo):
    demo.metric("score", 0.5, label="Score <b onmouseover=alert(1)>", unit="<img src=x onerror=alert(2)>")
    demo.claim("The <img src=x onerror=alert(3)> score is positive", True, score=0.5)
