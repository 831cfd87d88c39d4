"""The server a user writes in five minutes: FastAPI calling sentence-transformers'
``CrossEncoder.predict`` once per request (``bench_serve.py``'s baseline; the ``bench`` extra).

    python benchmarks/naive_serve.py MODEL_DIR PORT
"""

import sys

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import CrossEncoder

model = CrossEncoder(sys.argv[1], device="cpu")
app = FastAPI()


class Rerank(BaseModel):
    query: str
    texts: list[str]


@app.post("/rerank")
def rerank(req: Rerank):
    scores = model.predict([(req.query, t) for t in req.texts])
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    return [{"index": i, "score": float(scores[i])} for i in order]


@app.get("/health")
def health():
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
