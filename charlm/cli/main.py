"""Command line: python -m charlm train | generate | evaluate | score | explain | export | info.
The parser, the dispatch and the commands that read a model; train's setup is in cli.train, explain's in cli.explain."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from charlm.cli.errors import OwnError, UserError, not_a_file
from charlm.cli.explain import add_explain
from charlm.cli.train import train_command
from charlm.config import DEVICES
from charlm.presets import DEFAULT_PRESET, KNOBS, PRESETS, get_preset
from charlm.engine.sampling import STRATEGIES
from charlm.units import LN2, format_duration, plural


def cmd_train(args) -> int:
    """The preset is picked here, by the name --preset gives (the CLI alone reads presets); cli_train runs the rest.
    Running out of memory is said by every process, as one line naming what to lower."""
    from charlm.train.trainer import OutOfMemory
    try:
        return train_command(args, get_preset(args.preset))
    except OutOfMemory as err:
        sizes = err.sizes
        if sizes["batch_size"] is None:
            raise OwnError(f"{err.what}; lower --batch-size, --seq-len or --hidden and start again") from None
        raise OwnError(f"{err.what}; lower --batch-size (now {sizes['batch_size']}), --seq-len (now "
                       f"{sizes['seq_len']}) or --hidden (now {sizes['hidden_size']}) and start again") from None


def _load(path: str):
    from charlm.modelfile.checkpoint import load
    return load(path)


def _check_generate_size(args) -> None:
    """Refuse, before loading anything, work that could not fit: every text is held whole until it is written."""
    if args.length < 0:
        raise UserError(f"--length must be 0 or more; got {args.length}")
    if args.num_samples < 1:
        raise UserError(f"--num-samples must be at least 1; got {args.num_samples}")
    beam = args.strategy == "beam"
    beams = max(args.beam_width, args.num_samples)   # beam search keeps at least one beam per sample asked for
    if beam and beams > args.max_beam_width:
        raise UserError(f"beam search with {beams:,} beams is over the cap of {args.max_beam_width:,}; "
                        "lower --beam-width (and --num-samples), or raise the cap with --max-beam-width N")
    texts, what = (beams, "beams") if beam else (args.num_samples, "samples")
    if texts * args.length > args.max_chars:
        raise UserError(f"{texts:,} {what} x {args.length:,} characters = {texts * args.length:,} characters is over "
                        f"the cap of {args.max_chars:,}; write less, or raise the cap with --max-chars N")


def cmd_generate(args) -> int:
    _check_generate_size(args)
    from charlm.engine.sampling import DecodeConfig
    cfg = DecodeConfig(args.strategy, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                       min_p=args.min_p, beam_width=args.beam_width)
    from charlm.engine.decoding import engine_for, generate
    ckpt = _load(args.checkpoint)
    engine, vocab = engine_for(ckpt), ckpt.get_vocab()   # the numpy engine from the file's weights: no torch model
    stream = args.num_samples == 1 and args.strategy != "beam" and not ckpt.window

    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name such as {out / 'written.txt'}")
    stream = stream and out is None
    if stream and args.include_prime:
        sys.stdout.write(args.prime)

    def on_new_text(pieces):
        # Print as the text grows, so the first characters appear at once.
        sys.stdout.write(pieces[0])
        sys.stdout.flush()

    result = generate(engine, vocab, prime=args.prime, length=args.length, cfg=cfg, num_samples=args.num_samples,
                      seed=args.seed, on_new_text=on_new_text if stream else None)
    if result.missing:
        shown = "".join(result.missing)
        what = "were replaced by the unknown symbol" if vocab.unknown_id is not None else "were left out"
        print(f"note: characters the model never saw in the prime {what}: {shown!r}", file=sys.stderr)
    texts = [args.prime + text for text in result.texts] if args.include_prime else result.texts
    sep = "\n" + "-" * 40 + "\n"
    if out is not None:
        from charlm.files import write_atomically
        write_atomically(out, (sep.join(texts) + "\n").encode("utf-8"))
        print(f"wrote {plural(len(texts), 'text')} to {out}", file=sys.stderr)
    elif stream:
        sys.stdout.write("\n")   # the text itself is out already
    else:
        sys.stdout.write(sep.join(texts) + "\n")
    if not stream:
        if result.scores:
            print("beam log-probabilities (nats, the whole text's; nearer 0 is likelier): " + ", ".join(f"{s:.2f}" for s in result.scores), file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from charlm.text.corpus import load_corpus
    from charlm.nn.device import set_threads
    from charlm.nn.model import CharLSTM
    from charlm.train.evaluate import evaluate
    set_threads()
    ckpt = _load(args.checkpoint)
    file = Path(args.corpus)
    if not file.is_file():
        raise not_a_file(args.corpus)
    vocab = ckpt.get_vocab()
    corpus = load_corpus(file.read_bytes(), name=file.name, encoding=args.encoding)
    # Score the text with the checkpoint's own vocabulary: characters it never saw count as unknown.
    text = corpus.text
    missing = vocab.missing(text)
    if missing and vocab.unknown_id is None:
        raise UserError(f"the text has {plural(len(missing), 'character')} this model never saw ({''.join(missing[:20])!r}); "
                        "evaluate it on text like the one it was trained on")
    ids = vocab.encode(text)
    n_val = max(1, round(len(ids) * corpus.val_fraction))
    loss, count = evaluate(CharLSTM.from_checkpoint(ckpt, "cpu"), ids[len(ids) - n_val:], window=ckpt.window)
    print(f"{loss:.4f} nats/char  {loss / LN2:.4f} bits/char  {count} chars")
    return 0


def _escaped(char: str) -> str:
    """A character as score writes it: one that would break its line, or cannot be seen, as an escape."""
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}
    if char in named:
        return named[char]
    if char.isprintable():
        return char
    return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"


def read_capped(args, verb: str) -> tuple[str, str | None]:
    """args.file's text and decoder notice; refused unread when its bytes could hold over --max-chars characters."""
    from charlm.text.read import MAX_BYTES_PER_CHAR, decode_bytes
    file = Path(args.file)
    if not file.is_file():
        raise not_a_file(args.file)
    if file.stat().st_size > MAX_BYTES_PER_CHAR * args.max_chars:
        raise UserError(f"{args.file} is {file.stat().st_size:,} bytes, more than --max-chars {args.max_chars:,} "
                        f"characters could take; {verb} a part of it, or raise the cap with --max-chars N")
    text, _, notice = decode_bytes(file.read_bytes(), args.encoding)
    return text, notice


def cmd_score(args) -> int:
    if args.max_chars < 2:
        raise UserError(f"--max-chars must be at least 2; got {args.max_chars}")
    text, notice = read_capped(args, "score")
    if len(text) > args.max_chars:
        raise UserError(f"{args.file} has {len(text):,} characters, over the cap of {args.max_chars:,}; "
                        "score a part of it, or raise the cap with --max-chars N")
    if len(text) < 2:
        raise UserError(f"{args.file} has one character; scoring needs at least two (the first has nothing before it)")
    from charlm.engine.decoding import engine_for
    from charlm.engine.scoring import score_text
    ckpt = _load(args.checkpoint)
    scored = score_text(engine_for(ckpt), ckpt.vocab, text, top=0)
    if not scored.scored_count:
        raise UserError(f"none of the characters of {args.file} is one the model knows; score text like the one "
                        "it was trained on")
    if notice:
        print(f"note: {notice}", file=sys.stderr)
    missing = sorted(set(text).difference(ckpt.vocab))
    if missing:
        print(f"note: {plural(len(missing), 'character')} the model never saw {'is' if len(missing) == 1 else 'are'} "
              "not scored (nan): "
              f"{''.join(missing[:20])!r}", file=sys.stderr)
    lines = [f"{scored.mean_nats:.4f}"]
    lines += [f"{_escaped(char)}\t{surprise:.4f}" for char, surprise in zip(text[scored.start:], scored.surprise)]
    sys.stdout.write("\n".join(lines) + "\n")
    print(f"mean surprise {scored.mean_nats:.4f} nats/char ({scored.mean_bits:.4f} bits/char) over "
          f"{scored.scored_count:,} characters", file=sys.stderr)
    return 0


def cmd_info(args) -> int:
    ckpt = _load(args.checkpoint)
    cfg = ckpt.model_cfg()
    params = cfg.num_parameters()   # counted, not built: building would allocate whatever the config claims
    progress = ckpt.progress
    print(f"preset: {ckpt.preset}")
    print(f"model: {cfg.num_layers} x LSTM({cfg.hidden_size}), input {cfg.input_mode}"
          + (f" (embedding {cfg.embed_dim})" if cfg.input_mode == "embedding" else "")
          + f", dropout {cfg.dropout}" + (f", weight drop {cfg.weight_drop}" if cfg.weight_drop else "")
          + (f", embedding dropout {cfg.embed_drop}" if cfg.embed_drop else "") + f", {params:,} parameters")
    print(f"vocabulary: {len(ckpt.vocab)} characters")
    if ckpt.window:
        print(f"generation: re-reads a window of {ckpt.window} characters per step")
    print(f"trained: {progress.get('step', 0)} steps, {progress.get('chars_seen', 0):,} characters, "
          f"{format_duration(progress.get('elapsed_s'))} on {ckpt.info.get('device', '?')}"
          + (f" in {ckpt.info['arithmetic']}" if "arithmetic" in ckpt.info else "")
          + f" (corpus {ckpt.info.get('corpus', '?')})")
    average_from = ckpt.train_config.get("average_from")
    if isinstance(average_from, (int, float)) and not isinstance(average_from, bool):
        trained = ckpt.history[-1].get("val_loss_trained") if ckpt.history else None
        print(f"weights: their moving average from {average_from:.0%} of the run on"
              + (f" (the weights as trained scored {trained:.4f} nats/char)" if isinstance(trained, float) else ""))
    if "started_from" in ckpt.info:
        loss = ckpt.info.get("started_from_loss")
        print(f"started from: {ckpt.info['started_from']} ({ckpt.info.get('started_from_preset', '?')}, trained on "
              f"{ckpt.info.get('started_from_corpus', '?')}"
              + (f", validation {loss:.4f} nats/char" if isinstance(loss, float) else "") + ")"
              + (f"; characters added: {ckpt.info['new_chars']!r}" if ckpt.info.get("new_chars") else ""))
    if ckpt.history:
        first, last = ckpt.history[0], ckpt.history[-1]
        count = len(ckpt.history)
        print(f"history: {count} evaluation{'s' if count != 1 else ''}; validation loss {first['val_loss']:.4f} -> "
              f"{last['val_loss']:.4f} nats/char")
        best = ckpt.best_evaluation()
        print(f"weights: from evaluation {best + 1} of {count}, at step {ckpt.history[best].get('step', '?')} "
              "(the best validation loss)")
    if ckpt.best_val_loss is not None:
        print(f"best validation loss: {ckpt.best_val_loss:.4f} nats/char ({ckpt.best_val_loss / LN2:.4f} bits/char)")
    return 0


def cmd_export(args) -> int:
    from charlm.modelfile.checkpoint import save
    ckpt = _load(args.checkpoint)
    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(".safetensors")
    if out.resolve() == Path(args.checkpoint).resolve():
        raise UserError(f"{out} is the file being read; give another --out")
    print(f"wrote {save(ckpt, out)}")
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):   # argparse's usage errors also exit 2, with one clear line (not the whole usage)
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m charlm", description="Train a character-level LSTM and make it write.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train(sub)
    _add_generate(sub)
    _add_reading(sub)
    add_explain(sub)
    return parser


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on a text file")
    p.add_argument("corpus", nargs="+", help="a text file, several, or a folder (its files in sorted path order, "
                                             "a blank line between them)")
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS))
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="wall-clock budget; fractions work (0.1 = six seconds)")
    budget.add_argument("--epochs", type=float, help="passes over the training text")
    p.add_argument("--out", help="where the best model goes (default runs/TEXT-PRESET.safetensors); the resume "
                                 "file goes beside it as NAME.last.pt")
    p.add_argument("--resume", help="continue from a checkpoint (a .last.pt keeps optimizer and position)")
    p.add_argument("--init", metavar="MODEL", help="start a new run from a trained model (fine-tune it on this text): "
                                                   "its architecture and recipe; characters it never saw are added")
    p.add_argument("--device", default="auto", choices=DEVICES)
    shape = p.add_argument_group("the model and recipe (each defaults to the preset's)")
    for knob in KNOBS:   # the seed is the run's own, listed with the options above
        (shape if knob.from_preset else p).add_argument("--" + knob.flag.replace("_", "-"), type=knob.kind,
                                                        help=knob.help)
    p.add_argument("--encoding", help="the text's encoding (default: found from the file), e.g. cp1251, shift_jis")
    p.add_argument("--quiet", action="store_true", help="do not print the sample written at each evaluation")
    p.add_argument("--fp32", action="store_true", help="train in fp32 even where bf16 autocast would be chosen "
                                                       "(by default a short probe at the start decides)")
    p.add_argument("--save-every", type=float, metavar="SECONDS",
                   help="write the resume file at least this often (default: once a minute), so a killed run "
                        "loses little")
    p.set_defaults(func=cmd_train)


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="write text with a trained model")
    p.add_argument("checkpoint")
    p.add_argument("--prime", default="", help="text the model reads before writing")
    p.add_argument("--length", type=int, default=500)
    p.add_argument("--strategy", default="top-p", choices=STRATEGIES)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--min-p", type=float, default=0.05)
    p.add_argument("--beam-width", type=int, default=5)
    p.add_argument("--num-samples", type=int, default=1)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-chars", type=int, default=1_000_000, metavar="N",
                   help="most characters held at once: samples (beam: beams) x length; raise it on your own machine")
    p.add_argument("--max-beam-width", type=int, default=64, metavar="N",
                   help="most beams beam search may keep; raise it on your own machine")
    p.add_argument("--out", help="write the text(s) to this file (UTF-8) instead of the screen")
    p.add_argument("--include-prime", action="store_true", help="begin each text with the prime it continues")
    p.set_defaults(func=cmd_generate)


def _add_reading(sub) -> None:
    """The commands that read a model: evaluate, score, export, info."""
    p = sub.add_parser("evaluate", help="validation loss of a checkpoint on a text's last 10%%")
    p.add_argument("checkpoint")
    p.add_argument("corpus")
    p.add_argument("--encoding", help="the text's encoding (default: found from the file)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "score", help="the model's surprise at each character of a text file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="How surprised the model is at each character of the file, given everything before it: "
                    "-ln p, in nats.",
        epilog="Output: the first line is the mean surprise in nats per character. Then one line per character\n"
               "from the second (the first has nothing before it): the character, a tab, its surprise in nats.\n"
               "Characters that would break a line or cannot be seen are written escaped: \\n, \\t, \\r, \\\\ (a\n"
               "backslash) and \\uXXXX (other unprintable characters; \\UXXXXXXXX past U+FFFF). A character\n"
               "the model never saw is not scored: its surprise reads nan and it is left out of the mean.\n"
               "The file is read as the trainer reads text: line breaks become \\n, accents are composed (NFC).")
    p.add_argument("checkpoint")
    p.add_argument("file", help="a text file")
    p.add_argument("--max-chars", type=int, default=200_000, metavar="N",
                   help="most characters read (each keeps its prediction until the end); raise it on your own machine")
    p.add_argument("--encoding", help="the text's encoding (default: found from the file)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("export", help="write any checkpoint's model (a .pt of earlier versions, a .last.pt) "
                                      "as a model file: safetensors, which numpy reads without torch")
    p.add_argument("checkpoint")
    p.add_argument("--out", help="default: the checkpoint's path with .safetensors")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("info", help="describe a checkpoint")
    p.add_argument("checkpoint")
    p.set_defaults(func=cmd_info)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:   # the reader went away (`| head`): stop quietly, as other command-line tools do
        # What is still buffered for stdout would fail again in the interpreter's last flush; send it nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    # What a person can act on (CorpusError and CheckpointError are UserErrors; OSError: a file) is one line,
    # status 2. Anything else is a bug: it leaves with its traceback (status 1), which a bug report needs and
    # the command line, having no server log, is the only place to show.
    except (UserError, OSError) as err:
        rank = os.environ.get("RANK", "0") if "WORLD_SIZE" in os.environ else "0"
        if rank == "0":
            print(f"error: {err}", file=sys.stderr)
        elif isinstance(err, OwnError):
            print(f"error (process {rank}): {err}", file=sys.stderr)
        return 2
