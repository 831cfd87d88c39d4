"""``python -m cross_encoder.model_card``, the command line the README has always given: runs
:mod:`cross_encoder.modeling.card`, where the code lives."""

from cross_encoder.modeling.card import main

if __name__ == "__main__":
    raise SystemExit(main())
