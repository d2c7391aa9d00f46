"""Command-line arguments -> an exit code: one module per `caffeconf` command, each with
`add_arguments(parser)` and `run(args)`, all loading nets through compile.load."""
