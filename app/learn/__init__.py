"""Learn: how a character LSTM reads, learns and writes, one page per part, on live models."""

# The Learn section, in teaching order: (module in app/pages/learn/, title, address). Titles are what a
# teacher says ("open the Surprise map"), so they are fixed.
LEARN_PAGES = [
    ("text_to_numbers", "Text to numbers", "text-to-numbers", ":material/pin:"),
    ("windows_targets", "Windows and targets", "windows-and-targets", ":material/view_week:"),
    ("the_model", "The model", "the-model", ":material/account_tree:"),
    ("next_character", "Next-character distribution", "next-character", ":material/bar_chart:"),
    ("surprise_map", "Surprise map", "surprise-map", ":material/gradient:"),
    ("neuron_explorer", "Neuron explorer", "neuron-explorer", ":material/neurology:"),
    ("looked_back", "What it looked back at", "looked-back", ":material/manage_search:"),
    ("inside_cell", "Inside the cell", "inside-the-cell", ":material/memory:"),
    ("char_map", "Character map", "character-map", ":material/scatter_plot:"),
    ("training_over_time", "Training over time", "training-over-time", ":material/timeline:"),
    ("then_and_now", "2017 vs today", "2017-vs-today", ":material/compare:"),
    ("baselines_page", "Baselines", "baselines", ":material/straighten:"),
    ("decoding_lab", "Decoding lab", "decoding-lab", ":material/science:"),
    ("guess_game", "Guess the next character", "guess", ":material/quiz:"),
]
