"""``python -m cross_encoder.negatives``, the command line the README has always given: runs
:mod:`cross_encoder.first_stage.negatives`, where the code lives."""

from cross_encoder.first_stage.negatives import main

if __name__ == "__main__":
    raise SystemExit(main())
