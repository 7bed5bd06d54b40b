"""The train command: its options made into configs, a resumed or started-from run, the text, progress on stderr."""

from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from charlm.files import check_writable, sweep_stale
from charlm.cli.errors import UserError, not_a_file
from charlm.presets import KNOBS, split
from charlm.units import LN2, format_duration, plural

# The architecture and recipe flags of `train`, each starting at the preset's value (the seed is the run's own).
_PRESET_KNOBS = [knob for knob in KNOBS if knob.from_preset]


def train_command(args, preset) -> int:
    """python -m charlm train, given the charlm.presets.Preset that --preset names (cli looks it up: it alone reads
    presets); a resumed run, or one from --init, keeps its own. Running out of memory leaves as the trainer's
    OutOfMemory, for cli to say."""
    from charlm.nn.device import pick_device, set_threads
    from charlm.train.distributed import Group, joined
    from charlm.train.resume import last_path_for
    from charlm.train.trainer import SAVE_EVERY_S
    if args.save_every is None:
        args.save_every = SAVE_EVERY_S
    if not args.save_every >= 0:
        raise UserError(f"--save-every must be 0 or more seconds; got {args.save_every}")
    group = Group.from_environment()
    set_threads(processes=group.local_world_size)
    device = group.place(pick_device(args.device))
    out = _out_path(args)
    with joined(group, device) as group:
        corpus = _training_corpus(args, out, group)
        preset_name, model_cfg, train_cfg, resume, start, corpus = _training_run(args, corpus, preset)
        if group.is_main:
            _check_writable(out)
            for target in (out, last_path_for(out)):   # what a killed run's saves left behind
                sweep_stale(target)
        return _train_and_report(args, group, device, out, corpus, preset_name, model_cfg, train_cfg, resume, start)


def _train_and_report(args, group, device, out, corpus, preset, model_cfg, train_cfg, resume, start) -> int:
    """Train, showing progress on stderr and the model's path on stdout (rank 0; the others train quietly)."""
    from charlm.nn.device import describe
    from charlm.train.trainer import train
    header = [f"note: {corpus.notice}"] if corpus.notice else []
    if start is not None:
        origin = start.origin
        loss = f", validation {origin['started_from_loss']:.4f} nats/char" if "started_from_loss" in origin else ""
        new = (f"; {plural(len(origin['new_chars']), 'new character')} added: {origin['new_chars']!r}"
               if origin["new_chars"] else "")
        header.append(f"starting from {origin['started_from']} ({origin['started_from_preset']}, trained on "
                      f"{origin['started_from_corpus']}{loss}){new}")
    where = describe(device) if not group.active else f"{group.world_size} processes, each on {describe(device)}"
    header.append(f"training {preset} on {corpus.name} ({len(corpus.ids):,} characters, {len(corpus.vocab)} distinct) "
                  f"on {where}")
    stop = threading.Event()
    tty = sys.stderr.isatty()
    last_print = [0.0]

    def show(event):
        if header:   # said once training has begun, so a refused run prints its one error line alone
            header.append(f"computing in {event.arithmetic} ({event.arithmetic_why})")
            print("\n".join(header), file=sys.stderr)
            header.clear()
        now = time.monotonic()
        if event.kind == "step" and now - last_print[0] < (0.5 if tty else 10.0):
            return
        last_print[0] = now
        if event.kind in ("step", "eval"):
            bar = _bar(event.fraction)
            train_loss = f"{event.train_loss:.3f}" if event.train_loss is not None else "-"
            val = f"{event.val_loss:.4f} ({event.val_bits:.3f} bits)" if event.val_loss is not None else "-"
            line = (f"[{bar}] {event.fraction:4.0%} step {event.step} epoch {event.epoch:.2f} loss {train_loss} "
                    f"val {val} {event.chars_per_sec:,.0f} chars/s {event.arithmetic} "
                    f"ETA {format_duration(event.eta_s)}")
            print(("\r" + line + "\x1b[K") if tty and event.kind == "step" else line, end="" if tty and event.kind == "step" else "\n",
                  file=sys.stderr, flush=True)
            if event.kind == "eval" and event.sample and not args.quiet:
                # What the model writes now, indented so it stands apart from the progress lines.
                print("    " + event.sample.replace("\n", "\n    "), file=sys.stderr, flush=True)
        elif event.kind == "warning":
            print(f"\nwarning: {event.message}", file=sys.stderr)

    with _stopping_on_signals(stop):
        result = train(corpus, model_cfg, train_cfg, preset=preset, out=out, resume=resume, start=start,
                       on_progress=show, stop=stop, group=group, save_every_s=args.save_every)
    if not group.is_main:
        return 0
    if tty:
        print(file=sys.stderr)
    if result.message:
        print(result.message, file=sys.stderr)
    if result.best_val_loss is not None:
        print(f"best validation loss {result.best_val_loss:.4f} nats/char ({result.best_val_loss / LN2:.4f} bits/char) "
              f"after {result.steps} steps, {format_duration(result.elapsed_s)}", file=sys.stderr)
    print(f"checkpoint: {result.best_path or out}")
    print(f"latest (resume from this): {result.last_path}", file=sys.stderr)
    return 0


def _training_run(args, corpus, preset):
    """-> (preset name, model config, train config, resume, start, corpus): a new run from --preset, a new run
    from a trained model (--init), or --resume's with more budget."""
    from charlm.modelfile.checkpoint import load
    from charlm.train.resume import Resume
    if args.init:
        return _started_run(args, corpus)
    if args.resume:
        if args.seed is not None:
            raise UserError("--seed cannot change a resumed run: it goes on with its own random state")
        changed = [_option(knob) for knob in _PRESET_KNOBS if getattr(args, knob.flag) is not None]
        if args.fp32:
            changed.append("--fp32")
        if changed:
            raise UserError(f"{', '.join(changed)} cannot change a resumed run: it goes on with its own model "
                            "and recipe; start a new run to change them")
        resume = Resume(args.resume, minutes=args.minutes, epochs=args.epochs, device=args.device)
        return load(args.resume).preset, None, None, resume, None, corpus   # it keeps its own preset and configs
    refused = [_option(knob) for knob in KNOBS if getattr(args, knob.flag) is not None and not preset.takes(knob)]
    if refused:
        raise UserError(f"{refused[0]} does not apply to {preset.name}: it reads each character as one number, "
                        "not an embedding")
    shape, recipe = _given(args)
    recipe.update({name: getattr(args, name) for name in ("minutes", "epochs") if getattr(args, name) is not None})
    if args.fp32:
        recipe["amp"] = False
    # The configs check every value (whole numbers, ranges) and say which one is wrong, by its field's name.
    try:
        return (preset.name, preset.model_config(len(corpus.vocab), **shape),
                preset.train_config(device=args.device, **recipe), None, None, corpus)
    except ValueError as err:
        message = str(err)
        for knob in _PRESET_KNOBS:
            if getattr(args, knob.flag) is not None and message.startswith(knob.field + " "):
                message = f"{_option(knob)}: " + message
        raise UserError(message) from None


def _started_run(args, corpus):
    """A new run from --init's weights: its shape and recipe, this text (new characters added), a fresh budget."""
    from charlm.modelfile.checkpoint import load
    from charlm.train.startfrom import start_from
    if args.resume:
        raise UserError("--init starts a new run from a model; --resume continues a run: give one of them")
    shape = [f"--{knob.flag}" for knob in KNOBS if knob.shape and getattr(args, knob.flag) is not None]
    if shape:
        raise UserError(f"{', '.join(shape)} cannot be used with --init: the architecture comes from the model")
    ckpt = load(args.init)
    start = start_from(ckpt, corpus, args.init)
    saved = ckpt.train_cfg()
    # The model's own recipe with this run's budget (none given: one pass) and seed.
    _, changes = _given(args)
    if args.fp32:
        changes["amp"] = False
    cfg = saved.replace(minutes=args.minutes, epochs=args.epochs, max_steps=None, device=args.device, **changes)
    return ckpt.preset, start.model_cfg, cfg, None, start, start.corpus


def _training_corpus(args, out: Path, group):
    """The text to train on: a small file read into memory as always; several files, a folder, a large file,
    or any text under torchrun encoded once into a cache beside the run (rank 0 encodes, every process maps it)."""
    from charlm.text import encoded
    files, notes = encoded.found_files(args.corpus)
    if group.is_main:
        for level, message in notes:
            print(f"{level}: {message}", file=sys.stderr)
    name = encoded.corpus_name(args.corpus, files)
    if not group.active and not encoded.wants_cache(files):
        return _read_corpus(str(files[0]), args.encoding)
    path = error = None
    if group.is_main:
        try:
            _check_writable(out)
            path = encoded.cache_path(files, out.parent, name, args.encoding)
            encoded.prepare(files, path, name, args.encoding, on_progress=_encoding_bar(name, path))
        except (UserError, ValueError, OSError) as err:
            error = str(err)
    path, error = group.share_object((path, error))
    if error:
        raise UserError(error)
    if group.local_rank == 0 and not path.exists():   # another machine, without rank 0's disk: its own cache
        encoded.prepare(files, path, name, args.encoding)
    group.barrier()
    corpus = encoded.open_cache(path)
    # Starting from a trained model re-encodes the text with the model's vocabulary: that needs it in memory.
    return corpus.in_memory() if args.init else corpus


def _read_corpus(path: str, encoding: str | None = None):
    from charlm.text.corpus import load_corpus
    file = Path(path)
    if not file.is_file():
        raise not_a_file(path)
    return load_corpus(file.read_bytes(), name=file.name, encoding=encoding)


def _encoding_bar(name: str, path: Path):
    """A progress line for encoding a corpus into its cache, redrawn on a terminal, every 10 s in a log."""
    tty, last = sys.stderr.isatty(), [0.0]

    def show(what: str, fraction: float):
        now = time.monotonic()
        if fraction < 1.0 and now - last[0] < (0.2 if tty else 10.0):
            return
        last[0] = now
        line = f"encoding {name} once, into {path}: [{_bar(fraction)}] {fraction:4.0%} {what}"
        print(("\r" + line + "\x1b[K") if tty else line, end="" if tty and fraction < 1.0 else "\n",
              file=sys.stderr, flush=True)
    return show


def _bar(fraction: float, width: int = 24) -> str:
    filled = int(width * min(max(fraction, 0.0), 1.0))
    return "#" * filled + "-" * (width - filled)


def _out_path(args) -> Path:
    if args.out:
        return Path(args.out)
    if args.resume:   # carry on beside the run being resumed, never over another preset's model
        resumed = Path(args.resume)
        if resumed.name.endswith(".last.pt"):
            return resumed.with_name(resumed.name.removesuffix(".last.pt") + ".safetensors")
        return resumed
    return Path("runs") / f"{Path(args.corpus[0]).stem}-{args.preset}.safetensors"


def _given(args) -> tuple[dict, dict]:
    """The knobs given on the command line -> (model overrides, training overrides)."""
    return split({knob.field: getattr(args, knob.flag) for knob in KNOBS if getattr(args, knob.flag) is not None})


def _option(knob) -> str:
    """How the command line spells a knob: --weight-drop."""
    return "--" + knob.flag.replace("_", "-")


def _check_writable(out: Path) -> None:
    """Find out now, not after the training it would lose, that the checkpoint cannot be written."""
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name such as {out / 'model.pt'}")
    try:
        check_writable(out)
    except OSError as err:
        raise UserError(f"cannot write the checkpoint in {out.parent} ({err.strerror or err}); "
                        "choose another --out") from None


@contextmanager
def _stopping_on_signals(stop: threading.Event):
    """Ctrl-C (SIGINT) and SIGTERM (a shell's kill, a job scheduler) stop cleanly and the run still saves."""
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = [signal.signal(sig, lambda *_: stop.set()) for sig in signals]
    try:
        yield
    finally:   # the caller's own handlers come back (cli.main also runs inside other programs and tests)
        for sig, handler in zip(signals, previous):
            signal.signal(sig, handler)
