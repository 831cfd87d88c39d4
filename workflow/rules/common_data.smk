# Helpers of data.smk.


def beir_inputs(wildcards):
    """What beir_split reads from the BEIR folder: the queries and the train/test qrels."""
    folder = beir_dir()
    return {
        "queries": f"{folder}/queries.jsonl",
        "train_qrels": f"{folder}/qrels/train.tsv",
        "test_qrels": f"{folder}/qrels/test.tsv",
    }
