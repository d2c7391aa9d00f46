"""`caffeconf train [NET] --solver S`: train a net with Caffe's solvers and data layers on PyTorch."""

from __future__ import annotations

from ..train.signals import EFFECTS
from .net_options import add_runner_arguments, check_threads, load_options, warn
from .optional_modules import required_modules


def add_arguments(parser) -> None:
    parser.add_argument("net", nargs="?", metavar="NET",
                        help="the net (config or prototxt); else the solver's `net`. A solver prototxt "
                             "here stands for --solver; a config with a `solver:` section needs none")
    parser.add_argument("--solver", metavar="S", help="solver prototxt (or .yaml with the same fields)")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--weights", metavar="W.caffemodel", help="initial weights, copied by layer name")
    start.add_argument("--resume", metavar="STATE.solverstate", help="continue from a snapshot")
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="data-parallel processes (gloo on CPU, NCCL on GPUs)")
    add_runner_arguments(parser, "train", state=False)
    parser.add_argument("--sigint-effect", choices=EFFECTS, default="stop",
                        help="what SIGINT (Ctrl-C) and SIGTERM do, as Caffe's -sigint_effect: stop after "
                             "the current iteration and snapshot (default), snapshot and go on, or nothing")
    parser.add_argument("--sighup-effect", choices=EFFECTS, default="snapshot",
                        help="what SIGHUP does, as Caffe's -sighup_effect (default: snapshot and go on)")
    parser.add_argument("--log", metavar="LOG.csv", help="CSV log (default <snapshot_prefix>_log.csv)")
    parser.add_argument("--plot", metavar="PLOT.png", help="loss/accuracy plot (default <snapshot_prefix>_plot.png)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def run(args) -> int:
    from ..errors import CaffeconfError

    if args.nproc < 1:
        raise CaffeconfError.at(None, f"--nproc must be at least 1, got {args.nproc}")
    check_threads(args)
    with required_modules("train"):
        return _start(args)


def _start(args) -> int:
    from ..train.distributed import spawn, under_launcher

    solver_path, net_path = _paths(args)
    if args.nproc > 1:
        return spawn(args.nproc, _worker, (args, solver_path, net_path))
    return _train(args, solver_path, net_path, distributed=under_launcher())


def _paths(args) -> tuple[str, str | None]:
    from ..errors import CaffeconfError
    from ..compile.source import is_config

    if args.solver:
        return args.solver, args.net
    if args.net and is_config(args.net) and not _is_solver_config(args.net):
        return args.net, args.net  # the config's own `solver:` section
    if args.net and (is_config(args.net) or _is_solver_file(args.net)):
        return args.net, None
    raise CaffeconfError.at(None, "no solver: give --solver S (a solver prototxt or YAML), or a config "
                            "with a `solver:` section", hint="e.g. caffeconf train --solver lenet_solver.prototxt")


def _is_solver_config(path: str) -> bool:
    """A YAML/TOML file of plain SolverParameter fields, as --solver takes it."""
    from ..compile.compiler import is_solver_tree
    from ..compile.source import load_tree

    return is_solver_tree(load_tree(path))


def _is_solver_file(path: str) -> bool:
    from ..caffe.prototxt import read_net_or_solver
    from ..caffe import messages

    return isinstance(read_net_or_solver(path), messages.SolverParameter)


def _worker(rank: int, world: int, payload) -> int:
    args, solver_path, net_path = payload
    return _train(args, solver_path, net_path, distributed=True, rank=rank, world=world)


def _train(args, solver_path, net_path, distributed=False, rank=None, world=None) -> int:
    import os

    import torch

    from ..run.device import select_device, use_threads
    from ..caffe.weights import read_caffemodel
    from ..train import distributed as group
    from ..train.loop import TrainOptions, Trainer
    from ..train.report import Report
    from ..train.signals import Requests, exit_status
    from ..compile.solver import read_solver_file, test_nets, train_net
    from ..caffe.solverstate import read_snapshot

    note = use_threads(args.threads, world or int(os.environ.get("WORLD_SIZE", 1)))
    if rank in (None, 0):
        warn(note)
    how = load_options(args)
    solver = read_solver_file(solver_path, how)
    if rank in (None, 0):
        warn(_overridden_section(solver_path, net_path, how))
    device = select_device(args.device)
    options = TrainOptions(weights=read_caffemodel(args.weights) if args.weights else None,
                           resumed=read_snapshot(args.resume) if args.resume else None, device=device, load=how,
                           allow_python_layers=args.allow_python_layers,
                           requests=Requests(args.sigint_effect, args.sighup_effect, abort_on_repeat=not distributed))
    if distributed:
        if device.type == "cuda":
            device = torch.device("cuda", rank if rank is not None else int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
            options.device = device
        options.shard = group.join(device, rank, world)
        options.reduce_gradients = group.average_gradients
        options.leader = options.shard.rank == 0
        options.agree = group.strongest_request(device)
    prefix = solver.snapshot_prefix
    log_path = (args.log or f"{prefix}_log.csv") if options.leader else None
    plot_path = args.plot or f"{prefix}_plot.png"
    training, testing = train_net(solver, net_path, solver_path), test_nets(solver, net_path, solver_path)
    if options.leader:
        nets = [choice.path for choice in (training, *testing) if choice.inline is None]
        _check_outputs(prefix, log_path, plot_path,
                       (solver_path, *nets, *[path for path in (args.weights, args.resume) if path]))
    report = Report(log_path, solver.max_iter, quiet=args.quiet or not options.leader,
                    start_iteration=options.resumed.iteration if options.resumed else 0,
                    resumed=options.resumed is not None)
    try:
        trainer = Trainer(solver, training, testing, options, report)
        report.open_log()
        with options.requests.installed():
            finished = trainer.solve()
    finally:
        report.finish()
        group.leave()
    if options.leader:
        report.line(report.plot(plot_path) or f"log {report.csv_path}, plot {plot_path}")
        if not finished:
            _tell_how_to_resume(args, trainer)
    return 0 if finished else exit_status(trainer.stopped_by)


def _check_outputs(prefix: str, log: str, plot: str, inputs: tuple[str, ...]) -> None:
    """Snapshots, the log and the plot can be written, and none is an input, before training starts."""
    from ..caffe.solverstate import snapshot_paths
    from ..files import check_writable

    for output in (*snapshot_paths(prefix, 0), log, plot):
        check_writable(output, inputs)


def _overridden_section(solver_path: str, net_path: str | None, how) -> str | None:
    """A note when --solver replaces the `solver:` section of the config being trained."""
    from ..compile.source import is_config
    from ..compile.solver import config_solver

    if (net_path is None or solver_path == net_path or not is_config(net_path)
            or config_solver(net_path, how) is None):
        return None
    return f"note: --solver {solver_path} replaces the `solver:` section of {net_path}"


def _tell_how_to_resume(args, trainer) -> None:
    import shlex
    import sys

    where = f"iteration {trainer.iteration}"
    if trainer.snapshot_iteration != trainer.iteration:
        sys.stderr.write(f"caffeconf train: stopped by {trainer.stopped_by} at {where}; no snapshot "
                         "(snapshot_after_train is false)\n")
        return
    model, state = trainer.snapshots[-1]
    words = ["caffeconf", "train"] + ([args.net] if args.net else []) + (["--solver", args.solver] if args.solver
                                                                          else []) + ["--resume", state]
    sys.stderr.write(f"caffeconf train: stopped by {trainer.stopped_by} at {where}; snapshot {model} and "
                     f"{state}\nresume with (and your other options): {shlex.join(words)}\n")
