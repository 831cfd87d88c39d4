"""``python -m cross_encoder.fusion``, the command line the README has always given: runs
:mod:`cross_encoder.first_stage.fusion`, where the code lives."""

from cross_encoder.first_stage.fusion import main

if __name__ == "__main__":
    raise SystemExit(main())
