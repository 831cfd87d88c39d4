"""``python -m cross_encoder.dense``, the command line the README has always given: runs
:mod:`cross_encoder.first_stage.dense`, where the code lives."""

from cross_encoder.first_stage.dense import main

if __name__ == "__main__":
    raise SystemExit(main())
