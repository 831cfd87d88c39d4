"""``python -m cross_encoder.bm25``, the command line the README has always given: runs
:mod:`cross_encoder.first_stage.bm25`, where the code lives."""

from cross_encoder.first_stage.bm25 import main

if __name__ == "__main__":
    raise SystemExit(main())
