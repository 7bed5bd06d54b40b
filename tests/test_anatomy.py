"""charlm.learn.anatomy: the vocabulary with counts, text as ids, the 2017 window design against today's, the layer table."""

import math

import pytest

from charlm.learn import anatomy
from charlm.config import ModelConfig
from charlm.text.corpus import Vocab
from charlm.presets import PRESETS


def test_vocabulary_table_lists_every_character_by_index_with_its_count():
    table = anatomy.vocabulary_table(["\n", " ", "a", "b", "z"], "abba a\nb")
    assert [(e.index, e.char, e.count) for e in table] == [(0, "\n", 1), (1, " ", 1), (2, "a", 3), (3, "b", 3),
                                                          (4, "z", 0)]


def test_vocabulary_table_without_a_text_has_no_counts():
    table = anatomy.vocabulary_table(["a", "b"])
    assert [(e.index, e.char, e.count) for e in table] == [(0, "a", None), (1, "b", None)]


def test_a_sentence_becomes_indices_and_unknown_characters_are_flagged():
    assert anatomy.as_indices(["a", "b", "c", " "], "cab é") == [("c", 2), ("a", 0), ("b", 1), (" ", 3), ("é", None)]
    assert anatomy.outside_vocabulary(["a"], "aéxéé") == {"é": 3, "x": 1}


@pytest.mark.parametrize("vocab_size, expected", [(2, 1), (85, 1), (256, 1), (257, 2), (65_536, 2), (65_537, 4)])
def test_an_id_takes_the_bytes_the_corpus_stores_it_in(vocab_size, expected):
    assert anatomy.id_bytes(vocab_size) == expected
    vocab = Vocab(tuple(chr(0x100 + i) for i in range(vocab_size)))
    assert vocab.dtype.itemsize == expected


def test_the_2017_design_makes_one_example_per_window_and_keras_floats():
    # 1,000 characters, 50 distinct, windows of 100: 900 examples, each 100 float inputs and 50 one-hot floats.
    design = anatomy.window_design(1_000, 50, window=100)
    assert design.examples == 900
    assert design.input_bytes == 900 * 100 * 4 == 360_000
    assert design.target_bytes == 900 * 50 * 4 == 180_000
    assert design.total_bytes == 540_000


def test_todays_design_makes_every_position_but_the_first_a_target_from_one_byte_a_character():
    design = anatomy.stream_design(1_000, 50)
    assert design.examples == 999
    assert design.total_bytes == 1_000            # uint8 ids; the targets are the same array, one along
    assert anatomy.stream_design(1_000, 300).total_bytes == 2_000   # more than 256 characters: uint16


def test_on_the_nietzsche_text_the_2017_design_needs_hundreds_of_times_the_memory():
    n, v = 600_901, 85
    old, new = anatomy.window_design(n, v), anatomy.stream_design(n, v)
    assert old.examples == n - 100 and new.examples == n - 1
    assert old.total_bytes == (n - 100) * (100 + 85) * 4   # about 445 MB
    assert new.total_bytes == n
    assert old.total_bytes / new.total_bytes > 700


def test_a_text_shorter_than_the_window_gives_no_2017_examples():
    assert anatomy.window_design(50, 10, window=100).examples == 0
    assert anatomy.window_design(50, 10, window=100).total_bytes == 0


def test_window_example_scales_ids_by_the_vocabulary_size():
    ids, floats, target = anatomy.window_example([3, 1, 4, 1, 5, 9], vocab_size=10, start=1, window=3)
    assert ids == [1, 4, 1] and target == 5
    assert floats == pytest.approx([0.1, 0.4, 0.1])
    with pytest.raises(ValueError, match="need 4 characters"):
        anatomy.window_example([3, 1, 4, 1, 5, 9], vocab_size=10, start=3, window=3)


def test_bad_sizes_are_refused_with_a_message():
    with pytest.raises(ValueError, match="window"):
        anatomy.window_design(100, 10, window=0)
    with pytest.raises(ValueError, match="batch"):
        anatomy.layer_table(ModelConfig(vocab_size=10), batch=0, seq_len=5)


def test_layer_table_of_a_small_model_by_hand():
    # V = 10, E = 4, H = 8, one layer: embedding 10 x 4 = 40; LSTM 4H x (E + H) + 2 x 4H = 32 x 12 + 64 = 448;
    # head 8 x 10 + 10 = 90. 578 in all.
    config = ModelConfig(vocab_size=10, hidden_size=8, num_layers=1, embed_dim=4, dropout=0.1)
    layers = anatomy.layer_table(config, batch=2, seq_len=5)
    assert [layer.name for layer in layers] == ["Input ids", "Embedding", "Dropout", "LSTM layer 1", "Dropout",
                                                "Linear head", "Softmax"]
    assert [layer.output_shape for layer in layers] == [(2, 5), (2, 5, 4), (2, 5, 4), (2, 5, 8), (2, 5, 8),
                                                        (2, 5, 10), (2, 5, 10)]
    assert [layer.parameters for layer in layers] == [0, 40, 0, 448, 0, 90, 0]
    assert [layer.dims for layer in layers] == [("B", "T"), ("B", "T", "E"), ("B", "T", "E"), ("B", "T", "H"),
                                                ("B", "T", "H"), ("B", "T", "V"), ("B", "T", "V")]
    assert layers[3].weights == {"lstm.weight_ih_l0": (32, 4), "lstm.weight_hh_l0": (32, 8),
                                 "lstm.bias_ih_l0": (32,), "lstm.bias_hh_l0": (32,)}


def test_layer_table_of_the_2017_design_by_hand():
    # The scaled index is one float: LSTM(256) on V = 85 has 4 x 256 x (1 + 256) + 2 x 1024 = 265,216 weights;
    # the head 256 x 85 + 85 = 21,845. Nothing for the input.
    config = PRESETS["seed-2017"].model_config(vocab_size=85)
    layers = anatomy.layer_table(config, batch=128, seq_len=100)
    assert [layer.name for layer in layers] == ["Input ids", "Scaled index", "LSTM layer 1", "Dropout",
                                                "Linear head", "Softmax"]
    assert layers[1].output_shape == (128, 100, 1)
    assert [layer.parameters for layer in layers] == [0, 0, 265_216, 0, 21_845, 0]
    assert sum(layer.parameters for layer in layers) == 287_061


def test_stacked_layers_have_dropout_between_them_and_read_the_layer_below():
    config = ModelConfig(vocab_size=10, hidden_size=8, num_layers=2, embed_dim=4)
    layers = anatomy.layer_table(config, batch=1, seq_len=1)
    names = [layer.name for layer in layers]
    assert names == ["Input ids", "Embedding", "Dropout", "LSTM layer 1", "Dropout", "LSTM layer 2", "Dropout",
                     "Linear head", "Softmax"]
    assert layers[5].weights["lstm.weight_ih_l1"] == (32, 8)   # layer 2 reads layer 1's 8 outputs
    assert layers[5].parameters == 32 * 8 + 32 * 8 + 64


@pytest.mark.parametrize("config", [
    *(preset.model_config(vocab_size=85) for preset in PRESETS.values()),
    ModelConfig(vocab_size=2, hidden_size=1, num_layers=1, embed_dim=1),
    ModelConfig(vocab_size=300, hidden_size=64, num_layers=4, embed_dim=16, dropout=0.0),
    ModelConfig(vocab_size=40, hidden_size=32, num_layers=3, input_mode="scaled_index"),
], ids=lambda c: f"{c.input_mode}-{c.num_layers}x{c.hidden_size}-v{c.vocab_size}")
def test_layer_parameters_add_up_to_the_models(config):
    layers = anatomy.layer_table(config, batch=3, seq_len=7)
    assert sum(layer.parameters for layer in layers) == config.num_parameters()
    assert layers[-1].output_shape == (3, 7, config.vocab_size)
    # Every weight the model holds belongs to exactly one layer.
    names = [name for layer in layers for name in layer.weights]
    assert sorted(names) == sorted(config.weight_shapes())


def test_the_layer_table_matches_a_built_model():
    torch = pytest.importorskip("torch")
    from charlm.nn.model import CharLSTM

    config = ModelConfig(vocab_size=12, hidden_size=6, num_layers=2, embed_dim=3)
    model = CharLSTM(config)
    layers = anatomy.layer_table(config, batch=2, seq_len=4)
    assert sum(layer.parameters for layer in layers) == model.num_parameters()
    with torch.no_grad():
        logits, _ = model(torch.zeros(2, 4, dtype=torch.long))
    assert tuple(logits.shape) == layers[-2].output_shape
    assert math.isclose(float(torch.softmax(logits, -1).sum(-1).mean()), 1.0, rel_tol=1e-6)
    weights = {name: shape for layer in layers for name, shape in layer.weights.items()}
    assert weights == {name: tuple(p.shape) for name, p in model.state_dict().items()}
