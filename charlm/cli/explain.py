"""The explain command: what one prediction of a text looked back at (charlm.learn.influence), one line per character.
Its own module because cli.main is at the size a module may reach."""

from __future__ import annotations

import argparse
import sys


def cmd_explain(args) -> int:
    from charlm.cli.main import _escaped, _load, read_capped   # as score reads, so the two commands read alike
    from charlm.engine.decoding import engine_for
    from charlm.learn.influence import influence
    text, notice = read_capped(args, "explain")
    if notice:
        print(f"note: {notice}", file=sys.stderr)
    ckpt = _load(args.checkpoint)
    found = influence(engine_for(ckpt), ckpt.vocab, text, args.at, back=args.back)
    lines = [f"{found.logprob:.4f}"]
    lines += [f"{distance}\t{_escaped(char)}\t{value:.4f}"
              for distance, char, value in zip(found.distances.tolist(), found.chars, found.influence.tolist())]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def add_explain(sub) -> None:
    p = sub.add_parser(
        "explain", help="how much each earlier character mattered to one prediction of a text",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="For the character at position --at of the file (counted from 0, as the text is read: line "
                    "breaks as \\n), how much each earlier character mattered to the model's log-probability of "
                    "it: the drop in that log-probability when the character is left out of the text.",
        epilog="Output: the first line is ln p(the character at --at | the text before it), in nats. Then one line\n"
               "per earlier character, nearest first: its distance back, a tab, the character (escaped as score\n"
               "writes it: \\n, \\t, \\r, \\\\, \\uXXXX), a tab, its influence in nats (positive: it made the\n"
               "actual character likelier; negative: less likely).")
    p.add_argument("checkpoint")
    p.add_argument("file", help="a text file")
    p.add_argument("--at", type=int, required=True, metavar="N", help="the position of the character predicted")
    p.add_argument("--back", type=int, default=200, metavar="N", help="earlier characters measured (default 200)")
    p.add_argument("--max-chars", type=int, default=200_000, metavar="N",
                   help="most characters read; raise it on your own machine")
    p.add_argument("--encoding", help="the text's encoding (default: found from the file)")
    p.set_defaults(func=cmd_explain)
