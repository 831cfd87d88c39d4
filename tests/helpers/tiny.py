"""The sizes of transformers' own test BERT (``BertConfig(vocab_size=99, hidden_size=32, ...)``),
one label: for tests that build a random model in process without a tokenizer."""

TINY_SIZES = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    num_labels=1,
)
