"""``python -m cross_encoder.synthetic``, the command line the README has always given: runs
:mod:`cross_encoder.data.synthetic`, where the code lives."""

from cross_encoder.data.synthetic import main

if __name__ == "__main__":
    raise SystemExit(main())
