"""Learn, part 3: The model: its layers in order, the shape of the numbers between them, and what each one learns."""

from __future__ import annotations

import streamlit as st

from app.learn import common
from charlm.learn import anatomy
from charlm.config import ModelConfig
from charlm.presets import PRESETS

TITLE = "The model"
INTRO = (
    "The model is a short pipeline. Each character's index becomes a few numbers (a learned **embedding** row, or "
    "in 2017 just index / vocabulary size); the **LSTM** reads them one position after another, carrying a memory "
    "along; a **linear head** turns its output into one score per character; **softmax** makes the scores "
    "probabilities. Training reads many rows (a batch, **B**) of many positions (**T**) at once: set them below "
    "and watch the shapes. The weights are what training learns; their count is the model's size."
)


def training_shape(model) -> tuple[int, int]:
    """The batch and sequence length the model's preset trains with (sensible defaults otherwise)."""
    recipe = PRESETS.get(model.preset)
    batch, seq_len = (recipe.train.batch_size, recipe.train.seq_len) if recipe else (32, 64)
    return batch, model.window or seq_len


def flow_chart(layers: list[anatomy.Layer]) -> str:
    """The layers left to right as a graphviz graph, each box with its name and output shape."""
    boxes = []
    for i, layer in enumerate(layers):
        shape = "(" + ", ".join(layer.dims) + ")"
        colour = "#dbe8f6" if layer.parameters else "#f2f2f2"
        boxes.append(f'n{i} [label="{layer.name}\\n{shape}", fillcolor="{colour}"];')
    edges = " -> ".join(f"n{i}" for i in range(len(layers)))
    return ("digraph { rankdir=LR; node [shape=box, style=\"rounded,filled\", fontname=Helvetica, fontsize=11]; "
            + " ".join(boxes) + f" {edges}; }}")


def show_layers(model) -> None:
    import pandas as pd

    config = ModelConfig.from_dict(model.config)
    batch, seq_len = training_shape(model)
    common.start_values(model.key, model_batch=batch, model_seq=seq_len)
    c1, c2 = st.columns(2)
    batch = c1.slider("Batch B (rows read at once)", 1, 256, key="model_batch")
    seq_len = c2.slider("Sequence T (positions per row)", 1, 512, key="model_seq")
    layers = anatomy.layer_table(config, batch, seq_len)
    letters = {"B": batch, "T": seq_len, "E": config.embed_dim, "H": config.hidden_size, "V": config.vocab_size}
    st.caption("Letters: " + ", ".join(f"{k} = {v:,}" for k, v in letters.items()
                                       if k != "E" or config.input_mode == "embedding"))
    st.graphviz_chart(flow_chart(layers))
    table = pd.DataFrame({
        "layer": [layer.name for layer in layers],
        "output shape": ["(" + ", ".join(layer.dims) + ") = (" + ", ".join(f"{n:,}" for n in layer.output_shape) + ")"
                         for layer in layers],
        "parameters": [layer.parameters for layer in layers],
        "weights": ["; ".join(f"{name} {tuple(shape)}" for name, shape in layer.weights.items()) or "none"
                    for layer in layers],
        "what it does": [layer.does for layer in layers],
    })
    st.dataframe(table, hide_index=True, key="model_layers",
                 column_config={"parameters": st.column_config.NumberColumn(format="localized")})
    total = sum(layer.parameters for layer in layers)
    if total != config.num_parameters():   # our own invariant: the table groups the config's weights
        st.error(f"The layers add up to {total:,} parameters but the model has {config.num_parameters():,}.")
    c1, c2, c3 = st.columns(3)
    c1.metric("Parameters in all", f"{total:,}")
    c2.metric("Weights in memory (float32)", f"{total * 4 / 1e6:,.2f} MB")
    lstm = sum(layer.parameters for layer in layers if layer.name.startswith("LSTM"))
    c3.metric("Share in the LSTM", f"{lstm / max(1, total):.0%}")
    H, V = config.hidden_size, config.vocab_size
    above = f", {H} for the layers above" if config.num_layers > 1 else ""
    st.caption(f"An LSTM layer: four gates, each weighing its input and its own previous output ({H} numbers), "
               f"plus two biases: 4 × {H} × (input + {H}) + 2 × 4 × {H}; the input is {config.input_size} numbers "
               f"for layer 1{above}. The head: {H} × {V} weights + {V} biases.")
    if model.window:
        st.info(f"This is the 2017 design: for every character it writes it re-reads a {model.window}-character "
                f"window from a blank memory, and only the last position's scores are used: the head's output "
                f"that counts is (B, V) = ({batch:,}, {V:,}). Today's models carry the memory along instead.")


model = common.page_start(TITLE, INTRO)
if model is not None:
    show_layers(model)
