"""The embedded default dataset: a small synthetic MS MARCO, generated from a seed.

    python -m cross_encoder.data.synthetic --output_dir data/ --seed 0

writes, in the RetroMAE / MS MARCO formats, ``corpus.tsv`` (``pid\\ttitle\\ttext``, some titles
empty), ``train.query.txt`` and ``dev.query.txt`` (``qid\\ttext``), ``qrels.train.tsv``
(``qid\\t0\\tpid\\t1``) and ``qrels.dev.tsv`` (``qid\\tpid``, as RocketQA's dev qrels), so the
whole pipeline runs offline, in minutes on a CPU, with no user files. With ``--n_test N`` also
``test.query.txt`` and ``qrels.test.tsv``: queries on families of their own, never used to
select a checkpoint or tune a fusion (the workflow's demo reports them as its headline).

Design: a corpus where BM25 is fooled by vocabulary mismatch and near misses, the two things a
pretrained cross-encoder is known to fix, and that it can learn to fix in minutes on a CPU.

* Every passage is built around one *fact* of a *scene*: an animal that chased another near a
  river, someone who gave an object to someone else, a trader who sold some goods and bought
  others, a comparison between two people, two objects one above the other, two people who
  reached a place one before the other. A fact assigns a *lexeme* to each of the scene's roles
  and may be negated. Many lexemes have synonyms ("rabbit" / "bunny" / "hare", "chased" /
  "pursued", "doctor" / "physician"); every passage and every query names each role by its
  canonical word or, half of the time, by a synonym, drawn independently. A query and its
  relevant passage therefore share only some of their words.
* Facts come in *families*: a fact and three *near misses*, each changing one role to another
  lexeme of its pool ("... near the lake" for "... near the river", "the wolf" for "the fox") or
  negating the fact ("never chased": BM25's English stopwords include ``not``). A near miss
  shares all but one of the fact's lexemes, so it often shares more *words* with the query than
  the relevant passage does: BM25 ranks it first about a third of the time (dev MRR@10 about
  0.66), while meaning decides relevance.
* Each query (a keyword statement, a wh-question that leaves one role out, or a passive
  sentence) targets one fact of a family; three facts of each family are queried, so training
  sees the contrasts. A query's relevant passages are all passages whose fact matches the
  roles the query names; a query form is used only when that match is exactly its target fact,
  so every query has exactly one answer in the corpus. A few targets get a second passage
  stating the same fact in other words (dative shift, passive, antonym, "after" for "before"):
  those queries have two relevant passages.
* Passages get one to four filler sentences from templates with their own vocabulary (20-60
  words in all) and a generic title or none; unrelated passages (cooking, weather, science)
  are added. Pids follow a shuffled order, so ties in BM25 are broken at random.
* Train and dev queries use the same scenes, lexemes and query forms but different families
  (no fact is shared), so a cross-encoder fine-tuned on the train queries learns the rule that
  decides the dev queries.

Version 1 of this generator made families of role swaps ("the fox chased the rabbit" / "the
rabbit chased the fox") with the same bag of words. BM25 could only guess among them, but
neither could a MiniLM cross-encoder trained for five CPU-minutes: with the swapped passages
as its negatives its loss stayed at ln 4 for 250 steps (docs/demo.md), so the demo showed a
reranker that does not pay. Version 2 keeps the scenes and query forms and tests what a
reranker is for.

Only ``random.Random(seed)`` is used and no set of strings is iterated, so the same seed and
arguments give byte-identical files on every machine and Python version. Every file is written
atomically (a temp file in the same directory, then ``os.replace``).
"""

from __future__ import annotations

import argparse
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from cross_encoder.io import (
    InputError,
    PathLike,
    cli,
    setup_logging,
    write_corpus,
    write_qrels,
    write_qrels_pairs,
    write_queries,
)

__all__ = [
    "FILES",
    "Fact",
    "Passage",
    "Query",
    "SyntheticDataset",
    "build",
    "generate",
    "main",
]

logger = logging.getLogger(__name__)

#: Bumped whenever the same arguments would give other files (a workflow caches by it).
GENERATOR_VERSION = 2

#: Keys of the dict returned by :func:`generate`, and the file names they point to.
FILES: dict[str, str] = {
    "corpus": "corpus.tsv",
    "train_query": "train.query.txt",
    "dev_query": "dev.query.txt",
    "train_qrels": "qrels.train.tsv",
    "dev_qrels": "qrels.dev.tsv",
}
#: The files of the test split, written when ``n_test`` > 0.
TEST_FILES: dict[str, str] = {"test_query": "test.query.txt", "test_qrels": "qrels.test.tsv"}

# --------------------------------------------------------------------------- vocabulary


class Verb(NamedTuple):
    base: str
    past: str
    participle: str


class Comparative(NamedTuple):
    word: str
    opposite: str


Word = str | Verb | Comparative

# Each entry is a lexeme: one word, or a tuple of words that mean the same here (the first is
# the canonical one a fact stores). Words of different entries of a pool mean different things.
# fmt: off
POOLS: dict[str, tuple[Word | tuple[Word, ...], ...]] = {
    "animal": (
        "fox", ("rabbit", "bunny", "hare"), "wolf", ("deer", "stag"), "bear", ("horse", "pony"),
        "goat", ("sheep", "lamb"), ("dog", "hound", "puppy"), ("cat", "kitten"), "mouse", "owl",
        "eagle", "duck", "goose", "cow", ("pig", "hog", "swine"), "lion", "tiger", "monkey",
        ("snake", "serpent"), "frog", "crow", "hawk",
    ),
    "animal_adj": (
        "brown", "black", "white", ("grey", "gray"), "golden", ("young", "youthful"),
        ("old", "elderly", "aged"), ("small", "little", "tiny"), ("big", "large", "huge"),
        ("hungry", "starving", "famished"), ("wild", "feral"), ("lazy", "idle", "sluggish"),
    ),
    "animal_verb": (
        (Verb("chase", "chased", "chased"), Verb("pursue", "pursued", "pursued")),
        (Verb("follow", "followed", "followed"), Verb("trail", "trailed", "trailed")),
        Verb("bite", "bit", "bitten"),
        (Verb("watch", "watched", "watched"), Verb("observe", "observed", "observed")),
        Verb("attack", "attacked", "attacked"),
        (Verb("push", "pushed", "pushed"), Verb("shove", "shoved", "shoved")),
        Verb("kick", "kicked", "kicked"),
        (Verb("scare", "scared", "scared"), Verb("frighten", "frightened", "frightened")),
        (Verb("hunt", "hunted", "hunted"), Verb("stalk", "stalked", "stalked")),
        (Verb("ignore", "ignored", "ignored"), Verb("disregard", "disregarded", "disregarded")),
    ),
    "outdoors": (
        "river", "barn", ("forest", "woods"), "bridge", "meadow", "hill", "lake", "fence", "farm",
        "road", ("cave", "cavern"), "valley", ("beach", "shore", "seaside"),
    ),
    "name": (
        "Anna", "David", "Maria", "John", "Peter", "Sarah", "Thomas", "Laura", "James", "Emma",
        "Paul", "Lucy", "Daniel", "Helen", "Mark", "Rose", "Adam", "Alice", "George", "Julia",
        "Frank", "Grace", "Henry", "Kate", "Oliver", "Victor", "Simon", "Ruth",
    ),
    "object": (
        "book", "letter", "key", ("cup", "mug"), "ring", "map", ("lamp", "lantern"), "coin",
        "scarf", ("hat", "cap"), "camera", ("bottle", "flask"), ("knife", "blade"), "umbrella",
        ("wallet", "purse"), "guitar", ("painting", "picture"),
    ),
    "person_adj": (
        ("young", "youthful"), ("old", "elderly"), "tall", ("tired", "exhausted", "weary"),
        ("angry", "furious"), ("happy", "cheerful", "glad"), ("quiet", "silent"), "friendly",
        ("sick", "ill", "unwell"), ("nervous", "anxious"), ("polite", "courteous"),
        ("clever", "smart", "bright"), "proud", ("shy", "timid"),
    ),
    "give_verb": (
        Verb("give", "gave", "given"),
        (Verb("send", "sent", "sent"), Verb("mail", "mailed", "mailed")),
        Verb("show", "showed", "shown"),
        (Verb("lend", "lent", "lent"), Verb("loan", "loaned", "loaned")),
        (Verb("hand", "handed", "handed"), Verb("pass", "passed", "passed")),
        Verb("sell", "sold", "sold"),
        (Verb("throw", "threw", "thrown"), Verb("toss", "tossed", "tossed")),
        Verb("bring", "brought", "brought"),
    ),
    "room": (
        "kitchen", "library", "office", ("hallway", "corridor"), "classroom", "garage",
        ("attic", "loft"), ("basement", "cellar"), "studio", ("lobby", "foyer"), "bedroom", "cafe",
    ),
    "job": (
        "farmer", "baker", ("fisherman", "angler"), "tailor", "potter", "carpenter", "butcher",
        ("merchant", "trader"), ("sailor", "mariner"), "shepherd", ("teacher", "instructor"),
        ("doctor", "physician"), "nurse", "soldier",
    ),
    "number": (
        "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve", "twenty",
    ),
    "goods": (
        "apples", "bottles", ("blankets", "quilts"), "candles", "baskets", "onions", "cakes",
        "potatoes", "tomatoes", "jars", "bananas", "eggs", "shirts", "boots", "books", "tools",
    ),
    "market": (
        ("market", "bazaar"), "harbor", "fair", "station", ("square", "plaza"),
        ("dock", "pier", "wharf"), "festival",
    ),
    "comparative": (
        Comparative("taller", "shorter"),
        Comparative("older", "younger"),
        Comparative("stronger", "weaker"),
        (Comparative("faster", "slower"), Comparative("quicker", "slower")),
        (Comparative("richer", "poorer"), Comparative("wealthier", "poorer")),
        Comparative("heavier", "lighter"),
        Comparative("louder", "quieter"),
        (Comparative("bigger", "smaller"), Comparative("larger", "smaller")),
    ),
    "group": (
        "choir", "team", "class", "band", "crew", "family", "club", "office", "orchestra",
        "squad",
    ),
    "colour": (
        "red", "blue", "green", "yellow", "black", "white", "brown", ("grey", "gray"), "pink",
        ("purple", "violet"), "orange",
    ),
    "thing": (
        "box", "chair", "table", "shelf", ("bag", "sack"), "bed", ("sofa", "couch"), "desk",
        ("bucket", "pail"), "crate", "drawer", ("cabinet", "cupboard"), "mirror", "clock",
        "plant", "suitcase", "piano", "blanket",
    ),
    "preposition": (
        ("under", "beneath", "below"), ("above", "over"), "behind", ("inside", "within"),
    ),
    "building": (
        "station", "museum", "bakery", ("church", "chapel"), ("hospital", "clinic"), "school",
        ("stadium", "arena"), "castle", "airport", ("theatre", "theater"), "bank",
        ("hotel", "inn"), "library", "cinema",
    ),
    "travel_verb": (
        Verb("reach", "reached", "reached"),
        (Verb("leave", "left", "left"), Verb("exit", "exited", "exited")),
        Verb("enter", "entered", "entered"),
        (Verb("visit", "visited", "visited"), Verb("tour", "toured", "toured")),
        (Verb("clean", "cleaned", "cleaned"), Verb("scrub", "scrubbed", "scrubbed")),
        Verb("paint", "painted", "painted"),
    ),
}
# fmt: on


Entry = Word | tuple[Word, ...]


def _forms(entry: Entry) -> tuple[Word, ...]:
    """The words of a lexeme, canonical first (a Verb or Comparative is one word)."""
    return entry if type(entry) is tuple else (entry,)


def _key(word: Word) -> str:
    """The string a fact stores for a word (a verb by its base form)."""
    return word if isinstance(word, str) else word[0]


#: pool -> canonical key -> the lexeme's words (canonical first)
_LOOKUP: dict[str, dict[str, tuple[Word, ...]]] = {
    pool: {_key(_forms(e)[0]): _forms(e) for e in entries} for pool, entries in POOLS.items()
}

# --------------------------------------------------------------------------- scenes


@dataclass(frozen=True)
class QueryForm:
    """A query template; ``omit`` lists the roles it does not name."""

    template: str
    omit: tuple[str, ...] = ()
    negated: bool = False
    weight: float = 1.0


@dataclass(frozen=True)
class Scene:
    name: str
    roles: tuple[tuple[str, str], ...]  # (role, pool); roles sharing a pool get distinct words
    passages: tuple[str, ...]
    negated_passages: tuple[str, ...] = ()
    paraphrases: tuple[str, ...] = ()  # the same (non-negated) fact in other words
    queries: tuple[QueryForm, ...] = ()


Q = QueryForm

# fmt: off
SCENES: tuple[Scene, ...] = (
    Scene(
        name="pursuit",
        roles=(
            ("agent", "animal"),
            ("patient", "animal"),
            ("a1", "animal_adj"),
            ("a2", "animal_adj"),
            ("verb", "animal_verb"),
            ("place", "outdoors"),
        ),
        passages=(
            "the {a1} {agent} {verb.past} the {a2} {patient} near the {place}.",
            "near the {place}, the {a1} {agent} {verb.past} the {a2} {patient}.",
            "one day the {a1} {agent} {verb.past} the {a2} {patient} near the {place}.",
        ),
        negated_passages=(
            "the {a1} {agent} did not {verb.base} the {a2} {patient} near the {place}.",
            "near the {place}, the {a1} {agent} never {verb.past} the {a2} {patient}.",
        ),
        paraphrases=(
            "the {a2} {patient} was {verb.participle} by the {a1} {agent} near the {place}.",
        ),
        queries=(
            Q("{a1} {agent} {verb.past} the {a2} {patient} near the {place}", weight=3),
            Q("which animal {verb.past} the {a2} {patient} near the {place}?", ("a1", "agent")),
            Q("what did the {a1} {agent} {verb.base} near the {place}?", ("a2", "patient")),
            Q("the {a2} {patient} was {verb.participle} by the {a1} {agent} near the {place}"),
            Q("{a1} {agent} did not {verb.base} the {a2} {patient} near the {place}", (), True, 2),
            Q("which animal never {verb.past} the {a2} {patient} near the {place}?",
              ("a1", "agent"), True),
        ),
    ),
    Scene(
        name="gift",
        roles=(
            ("giver", "job"),
            ("receiver", "job"),
            ("a1", "person_adj"),
            ("a2", "person_adj"),
            ("obj", "object"),
            ("verb", "give_verb"),
            ("room", "room"),
        ),
        passages=(
            "in the {room}, the {a1} {giver} {verb.past} the {obj} to the {a2} {receiver}.",
            "the {a1} {giver} {verb.past} the {obj} to the {a2} {receiver} in the {room}.",
        ),
        negated_passages=(
            "the {a1} {giver} did not {verb.base} the {obj} to the {a2} {receiver} in the {room}.",
            "in the {room}, the {a1} {giver} never {verb.past} the {obj} to the {a2} {receiver}.",
        ),
        paraphrases=(
            "in the {room}, the {a1} {giver} {verb.past} the {a2} {receiver} the {obj}.",
        ),
        queries=(
            Q("the {a1} {giver} {verb.past} the {obj} to the {a2} {receiver} in the {room}",
              weight=3),
            Q("who {verb.past} the {obj} to the {a2} {receiver} in the {room}?", ("a1", "giver")),
            Q("who did the {a1} {giver} {verb.base} the {obj} to in the {room}?",
              ("a2", "receiver")),
            Q("what did the {a1} {giver} {verb.base} to the {a2} {receiver} in the {room}?",
              ("obj",)),
            Q("the {a1} {giver} did not {verb.base} the {obj} to the {a2} {receiver} in the {room}",
              (), True, 2),
            Q("who never {verb.past} the {obj} to the {a2} {receiver} in the {room}?",
              ("a1", "giver"), True),
        ),
    ),
    Scene(
        name="trade",
        roles=(
            ("person", "job"),
            ("n1", "number"),
            ("n2", "number"),
            ("item1", "goods"),
            ("item2", "goods"),
            ("place", "market"),
        ),
        passages=(
            "at the {place}, the {person} sold {n1} {item1} and bought {n2} {item2}.",
            "the {person} sold {n1} {item1} at the {place} and bought {n2} {item2}.",
        ),
        paraphrases=(
            "the {person} bought {n2} {item2} at the {place} after selling {n1} {item1}.",
        ),
        queries=(
            Q("{person} sold {n1} {item1} and bought {n2} {item2} at the {place}", weight=2),
            Q("the {person} bought {n2} {item2} at the {place}", ("n1", "item1"), weight=2),
            Q("the {person} sold {n1} {item1} at the {place}", ("n2", "item2"), weight=2),
            Q("who bought {n2} {item2} at the {place}?", ("person", "n1", "item1")),
            Q("who sold {n1} {item1} at the {place}?", ("person", "n2", "item2")),
        ),
    ),
    Scene(
        name="comparison",
        roles=(
            ("x", "job"),
            ("y", "job"),
            ("a1", "person_adj"),
            ("a2", "person_adj"),
            ("comp", "comparative"),
            ("group", "group"),
        ),
        passages=(
            "in the {group}, the {a1} {x} is {comp.word} than the {a2} {y}.",
            "everyone in the {group} knows that the {a1} {x} is {comp.word} than the {a2} {y}.",
        ),
        paraphrases=("in the {group}, the {a2} {y} is {comp.opposite} than the {a1} {x}.",),
        queries=(
            Q("the {a1} {x} is {comp.word} than the {a2} {y} in the {group}", weight=3),
            Q("{a1} {x} {comp.word} than {a2} {y} in the {group}"),
            Q("who is {comp.word} than the {a2} {y} in the {group}?", ("a1", "x")),
            Q("who is the {a1} {x} {comp.word} than in the {group}?", ("a2", "y")),
        ),
    ),
    Scene(
        name="position",
        roles=(
            ("c1", "colour"),
            ("obj1", "thing"),
            ("c2", "colour"),
            ("obj2", "thing"),
            ("prep", "preposition"),
            ("room", "room"),
        ),
        passages=(
            "in the {room}, the {c1} {obj1} is {prep} the {c2} {obj2}.",
            "the {c1} {obj1} stands {prep} the {c2} {obj2} in the {room}.",
        ),
        queries=(
            Q("the {c1} {obj1} is {prep} the {c2} {obj2} in the {room}", weight=3),
            Q("what is {prep} the {c2} {obj2} in the {room}?", ("c1", "obj1")),
            Q("where is the {c1} {obj1} in the {room}?", ("c2", "obj2", "prep")),
            Q("{c1} {obj1} {prep} {c2} {obj2} {room}"),
        ),
    ),
    Scene(
        name="race",
        roles=(
            ("p1", "name"),
            ("p2", "name"),
            ("verb", "travel_verb"),
            ("place1", "building"),
            ("place2", "building"),
        ),
        passages=(
            "{p1} {verb.past} the {place1} before {p2} {verb.past} the {place2}.",
            "that morning {p1} {verb.past} the {place1}, and later {p2} {verb.past} the {place2}.",
        ),
        paraphrases=("{p2} {verb.past} the {place2} after {p1} {verb.past} the {place1}.",),
        queries=(
            Q("{p1} {verb.past} the {place1} before {p2} {verb.past} the {place2}", weight=3),
            Q("who {verb.past} the {place1} before {p2} {verb.past} the {place2}?", ("p1",)),
            Q("who {verb.past} the {place2} after {p1} {verb.past} the {place1}?", ("p2",)),
            Q("which place did {p1} {verb.base} before {p2} {verb.past} the {place2}?",
              ("place1",)),
        ),
    ),
)
# fmt: on

_SCENE = {s.name: s for s in SCENES}

# --------------------------------------------------------------------------- fillers

FILLER_WORDS: dict[str, tuple[str, ...]] = {
    "weather": ("sunny", "cloudy", "windy", "rainy", "cold", "warm", "foggy", "quiet", "dry"),
    "daytime": ("morning", "afternoon", "evening", "night"),
    "month": ("january", "march", "april", "june", "july", "august", "october", "december"),
    "season": ("spring", "summer", "autumn", "winter"),
    "witness": ("stranger", "visitor", "traveller", "neighbour", "student", "pilgrim"),
    "record": ("newspaper", "diary", "journal", "notebook", "chronicle", "newsletter"),
    "duration": ("several weeks", "a whole month", "many years", "a few days", "the whole year"),
    "mood": ("calm", "strange", "normal", "peaceful", "busy", "memorable"),
}

MIN_WORDS, MAX_WORDS = 20, 60  #: bounds on the number of words of a passage
P_CANONICAL = 0.5  #: chance that a passage or query names a role by its canonical word
MAX_FAMILY = 6  #: the smallest scene has 5 roles: a family holds at most 1 + 5 facts

FILLERS: tuple[str, ...] = (
    "It was a {weather} {daytime} in {month}.",
    "People talked about it for {duration}.",
    "A {witness} who saw it wrote a short note about it later.",
    "The {weather} weather lasted until the end of the day.",
    "This account comes from an old {record}.",
    "Some details of the story may have changed over the years.",
    "Several witnesses remembered that {daytime} clearly.",
    "It happened during the {season} of that year.",
    "The {daytime} had been {mood} until then.",
    "Later, a local {record} described the event in a few lines.",
    "Nobody could say exactly why it happened.",
    "According to a {witness}, the whole thing took only a minute.",
    "The {season} had been long and {weather} that year.",
    "Everybody agreed that it was a {mood} {daytime}.",
)

TITLES: tuple[str, ...] = (
    "Field notes",
    "Diary entry",
    "Local news",
    "Short story",
    "Daily log",
    "Old records",
    "Letters home",
    "Travel journal",
    "Weekly bulletin",
    "Small events",
)

UNRELATED_WORDS: dict[str, tuple[str, ...]] = {
    "dish": ("soup", "stew", "pie", "salad", "bread", "cake", "curry", "omelette"),
    "ingredient": ("flour", "butter", "garlic", "rice", "beans", "cheese", "honey", "spinach"),
    "spice": ("salt", "pepper", "cinnamon", "ginger", "paprika", "nutmeg"),
    "metal": ("copper", "iron", "gold", "aluminium", "zinc", "tin"),
    "planet": ("mars", "venus", "jupiter", "saturn", "mercury", "neptune"),
    "sport": ("tennis", "football", "cricket", "hockey", "rugby", "golf", "swimming"),
    "instrument": ("violin", "trumpet", "flute", "drum", "cello", "harp"),
    "amount": ("two", "three", "four", "five", "six"),
    "minutes": ("ten", "twenty", "thirty", "forty", "fifty"),
}

UNRELATED: tuple[str, ...] = (
    "The {dish} is made with {ingredient}, a little {spice} and {amount} cups of water.",
    "Bake the {dish} for {minutes} minutes and serve it with {ingredient}.",
    "{metal} conducts heat well and is used in many kitchen pans.",
    "The planet {planet} can sometimes be seen with the naked eye after sunset.",
    "A {sport} match usually draws a large crowd on weekends.",
    "Learning the {instrument} takes patience and daily practice.",
    "Add {spice} slowly, tasting as you go, until the {dish} is ready.",
    "Astronomers measured the orbit of {planet} with great precision.",
    "The rules of {sport} were written down more than a century ago.",
    "Store {ingredient} in a cool, dry cupboard away from sunlight.",
    "The orchestra needed a new {instrument} player for the concert season.",
    "Prices of {metal} rose sharply during the last decade.",
)

# --------------------------------------------------------------------------- data model


@dataclass(frozen=True)
class Fact:
    """One statement of a scene: a word for every role, possibly negated."""

    scene: str
    slots: tuple[tuple[str, str], ...]  # (role, word), in the scene's role order
    negated: bool = False

    def words(self) -> dict[str, str]:
        """The fact's words by role (``{role: word}``)."""
        return dict(self.slots)

    def matches(self, scene: str, named: Mapping[str, str], negated: bool) -> bool:
        """Whether a query that names ``named`` (and this polarity) is answered by this fact."""
        if scene != self.scene or negated != self.negated:
            return False
        words = self.words()
        return all(words[role] == word for role, word in named.items())


@dataclass
class Passage:
    """A generated passage; ``fact`` None for an unrelated one."""

    title: str
    text: str
    fact: Fact | None = None  # None: an unrelated passage
    pid: str = ""


@dataclass
class Query:
    """A generated query, the fact it asks for and its positive passages."""

    text: str
    target: Fact
    positives: list[Passage] = field(default_factory=list)
    qid: str = ""


@dataclass
class SyntheticDataset:
    """The generated corpus and the train, dev and test queries."""

    passages: list[Passage]  # in pid order
    train: list[Query]  # in qid order
    dev: list[Query]
    test: list[Query] = field(default_factory=list)


# --------------------------------------------------------------------------- generation


def _context(
    scene: Scene, words: Mapping[str, str], rng: random.Random, p_canonical: float
) -> dict[str, Word]:
    """A surface word for every role: the canonical word with probability ``p_canonical``,
    else one of its synonyms (drawn independently for every passage and query)."""
    out: dict[str, Word] = {}
    for role, pool in scene.roles:
        forms = _LOOKUP[pool][words[role]]
        if len(forms) == 1 or rng.random() < p_canonical:
            out[role] = forms[0]
        else:
            out[role] = rng.choice(forms[1:])
    return out


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(template: str, vocab: Mapping[str, Sequence[str]], rng: random.Random) -> str:
    names = [n for n in vocab if "{" + n + "}" in template]
    return template.format(**{n: rng.choice(vocab[n]) for n in names})


def _family(scene: Scene, rng: random.Random, size: int) -> list[Fact]:
    """A fact of ``scene`` and ``size - 1`` near misses: each changes one role to another word
    of its pool (or negates the fact, where the scene can say it), so they share all but one
    of the fact's words with it."""
    words: dict[str, str] = {}
    used: dict[str, list[str]] = {}
    for role, pool in scene.roles:
        taken = used.setdefault(pool, [])
        word = rng.choice([k for k in _LOOKUP[pool] if k not in taken])
        taken.append(word)
        words[role] = word
    base = Fact(scene.name, tuple((r, words[r]) for r, _ in scene.roles))
    changes: list[str | None] = [r for r, _ in scene.roles]
    if scene.negated_passages:
        changes.append(None)  # None: the negated fact
    facts = [base]
    for role in rng.sample(changes, min(size - 1, len(changes))):
        if role is None:
            facts.append(Fact(scene.name, base.slots, negated=True))
            continue
        pool = dict(scene.roles)[role]
        free = [k for k in _LOOKUP[pool] if k not in used[pool]]
        new = rng.choice(free)
        used[pool].append(new)  # no two facts of a family share a replacement word
        variant = dict(words, **{role: new})
        facts.append(Fact(scene.name, tuple((r, variant[r]) for r, _ in scene.roles)))
    return facts


def _passage_text(fact: Fact, rng: random.Random, paraphrase: bool = False) -> str:
    scene = _SCENE[fact.scene]
    if paraphrase:
        templates = scene.paraphrases
    else:
        templates = scene.negated_passages if fact.negated else scene.passages
    context = _context(scene, fact.words(), rng, P_CANONICAL)
    key = _sentence(rng.choice(templates).format(**context))
    # one to four filler sentences, within MIN_WORDS..MAX_WORDS words in all
    fillers = [_fill(t, FILLER_WORDS, rng) for t in rng.sample(FILLERS, len(FILLERS))]
    target = rng.randint(1, 4)
    sentences: list[str] = []
    n_words = len(key.split())
    for filler in fillers:
        n = len(filler.split())
        if n_words + n > MAX_WORDS or (len(sentences) >= target and n_words >= MIN_WORDS):
            break
        sentences.append(filler)
        n_words += n
    sentences.insert(rng.randint(0, len(sentences)), key)
    return " ".join(sentences)


def _title(rng: random.Random) -> str:
    return "" if rng.random() < 0.35 else rng.choice(TITLES)


def _unrelated(rng: random.Random) -> Passage:
    templates = list(UNRELATED)
    rng.shuffle(templates)
    n = rng.randint(2, 4)
    sentences = [_fill(t, UNRELATED_WORDS, rng) for t in templates[:n]]
    while len(" ".join(sentences).split()) < MIN_WORDS:
        sentences.append(_fill(templates[len(sentences)], UNRELATED_WORDS, rng))
    rng.shuffle(sentences)
    return Passage(_title(rng), " ".join(sentences))


def _weighted_order(forms: Sequence[QueryForm], rng: random.Random) -> list[QueryForm]:
    """``forms`` in random order, heavier ones earlier (weighted sampling without replacement)."""
    keyed = [(rng.random() ** (1.0 / f.weight), i) for i, f in enumerate(forms)]
    return [forms[i] for _, i in sorted(keyed, reverse=True)]


def _query_text(
    target: Fact, facts_by_scene: Mapping[str, Sequence[Fact]], rng: random.Random
) -> str:
    """A query for ``target`` in a form whose named roles match no other fact of the corpus."""
    scene = _SCENE[target.scene]
    words = target.words()
    forms = [f for f in scene.queries if f.negated == target.negated]
    for form in _weighted_order(forms, rng):
        named = {r: w for r, w in words.items() if r not in form.omit}
        facts = facts_by_scene[scene.name]
        hits = [f for f in facts if f.matches(scene.name, named, target.negated)]
        if hits == [target]:
            text = form.template.format(**_context(scene, words, rng, P_CANONICAL))
            return text.lower() if rng.random() < 0.8 else _sentence(text)
    raise AssertionError(f"no unambiguous query form for {target}")  # full forms never clash


def build(
    seed: int = 0,
    n_train: int = 300,
    n_dev: int = 100,
    n_random_passages: int = 50,
    queries_per_family: int = 3,
    family_size: int = 4,
    two_positive_rate: float = 0.05,
    n_test: int = 0,
) -> SyntheticDataset:
    """The dataset in memory; :func:`generate` writes it. See the module docstring."""
    if n_train < 1 or n_dev < 1:
        raise InputError(None, "--n_train and --n_dev must be >= 1")
    if n_test < 0:
        raise InputError(None, "--n_test must be >= 0")
    if n_random_passages < 0:
        raise InputError(None, "--n_random_passages must be >= 0")
    if not 2 <= family_size <= MAX_FAMILY:
        raise InputError(None, f"--family_size must be between 2 and {MAX_FAMILY}")
    if not 1 <= queries_per_family <= family_size:
        raise InputError(None, f"--queries_per_family must be between 1 and {family_size}")
    if not 0.0 <= two_positive_rate <= 1.0:
        raise InputError(None, "--two_positive_rate must be between 0 and 1")
    rng = random.Random(seed)

    # 1. families of facts; no fact occurs twice in the corpus
    seen: set[Fact] = set()
    # (the test split comes last, so n_test = 0 gives version 2's files byte for byte)
    sizes = {"train": n_train, "dev": n_dev, **({"test": n_test} if n_test else {})}
    splits: dict[str, list[tuple[list[Fact], list[Fact]]]] = {s: [] for s in sizes}
    for split, n_queries in sizes.items():
        remaining = n_queries
        while remaining:
            for _attempt in range(1000):
                facts = _family(rng.choice(SCENES), rng, family_size)
                if not seen.intersection(facts):
                    break
            else:  # pragma: no cover - the pools hold millions of combinations
                raise InputError(None, "too many queries for the synthetic vocabulary")
            seen.update(facts)
            k = min(queries_per_family, len(facts), remaining)
            splits[split].append((facts, rng.sample(facts, k)))
            remaining -= k

    # 2. passages: every fact, a paraphrase for a few queried facts, unrelated passages
    passages: list[Passage] = []
    by_fact: dict[Fact, list[Passage]] = {}
    for families in splits.values():
        for facts, targets in families:
            for fact in facts:
                p = Passage(_title(rng), _passage_text(fact, rng), fact)
                passages.append(p)
                by_fact[fact] = [p]
            for fact in targets:
                scene = _SCENE[fact.scene]
                if scene.paraphrases and not fact.negated and rng.random() < two_positive_rate:
                    p = Passage(_title(rng), _passage_text(fact, rng, paraphrase=True), fact)
                    passages.append(p)
                    by_fact[fact].append(p)
    passages += [_unrelated(rng) for _ in range(n_random_passages)]
    rng.shuffle(passages)
    for pid, p in enumerate(passages):
        p.pid = str(pid)

    # 3. queries, in a form that has exactly one answer in the corpus
    facts_by_scene: dict[str, list[Fact]] = {s.name: [] for s in SCENES}
    for families in splits.values():
        for facts, _ in families:
            facts_by_scene[facts[0].scene].extend(facts)
    queries: dict[str, list[Query]] = {}
    first_qid = 1_000_000
    for split, families in splits.items():
        qs = [
            Query(_query_text(t, facts_by_scene, rng), t, sorted(by_fact[t], key=_pid_order))
            for _, targets in families
            for t in targets
        ]
        rng.shuffle(qs)
        for q in qs:
            q.qid = str(first_qid)
            first_qid += 1
        queries[split] = qs
    return SyntheticDataset(passages, queries["train"], queries["dev"], queries.get("test", []))


def _pid_order(p: Passage) -> int:
    return int(p.pid)


def generate(
    output_dir: PathLike,
    seed: int = 0,
    n_train: int = 300,
    n_dev: int = 100,
    n_random_passages: int = 50,
    queries_per_family: int = 3,
    family_size: int = 4,
    two_positive_rate: float = 0.05,
    n_test: int = 0,
) -> dict[str, Path]:
    """Write the synthetic dataset under ``output_dir``; return ``{key: path}`` (see :data:`FILES`).

    With the defaults: about 600 passages, 300 train and 100 dev queries, 5% of them with two
    relevant passages. The same arguments always give byte-identical files.
    """
    data = build(
        seed,
        n_train,
        n_dev,
        n_random_passages,
        queries_per_family,
        family_size,
        two_positive_rate,
        n_test,
    )
    out = Path(output_dir)
    paths = {key: out / name for key, name in (FILES | (TEST_FILES if n_test else {})).items()}
    write_corpus(paths["corpus"], ((p.pid, p.title, p.text) for p in data.passages))
    for split, queries in (("train", data.train), ("dev", data.dev), ("test", data.test)):
        if not queries:
            continue
        write_queries(paths[f"{split}_query"], ((q.qid, q.text) for q in queries))
        # official MS MARCO train qrels have 4 columns, RocketQA's dev qrels 2
        if split == "train":
            write_qrels(
                paths["train_qrels"], {q.qid: {p.pid: 1 for p in q.positives} for q in queries}
            )
        else:
            write_qrels_pairs(
                paths[f"{split}_qrels"], {q.qid: [p.pid for p in q.positives] for q in queries}
            )
    logger.info(
        "synthetic dataset (seed %d): %d passages, %d train, %d dev and %d test queries -> %s",
        seed,
        len(data.passages),
        len(data.train),
        len(data.dev),
        len(data.test),
        out,
    )
    return paths


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cross_encoder.data.synthetic",
        description="Write the embedded synthetic dataset (MS MARCO / RetroMAE formats).",
    )
    p.add_argument("--output_dir", required=True, help="where to write the five files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n_train", type=int, default=300, help="number of train queries")
    p.add_argument("--n_dev", type=int, default=100, help="number of dev queries")
    p.add_argument(
        "--n_test", type=int, default=0, help="number of test queries (0: no test split)"
    )
    p.add_argument("--n_random_passages", type=int, default=50, help="unrelated passages")
    p.add_argument(
        "--queries_per_family", type=int, default=3, help="queries per family of hard passages"
    )
    p.add_argument(
        "--family_size",
        type=int,
        default=4,
        help="facts per family: one and its near misses (each changes one word, or negates)",
    )
    p.add_argument(
        "--two_positive_rate",
        type=float,
        default=0.05,
        help="share of queries with a second relevant passage (a paraphrase)",
    )
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); returns the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging()
    paths = generate(
        args.output_dir,
        seed=args.seed,
        n_train=args.n_train,
        n_dev=args.n_dev,
        n_test=args.n_test,
        n_random_passages=args.n_random_passages,
        queries_per_family=args.queries_per_family,
        family_size=args.family_size,
        two_positive_rate=args.two_positive_rate,
    )
    for key, path in paths.items():
        print(f"{key}\t{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
