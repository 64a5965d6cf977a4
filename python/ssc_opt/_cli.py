"""The ``ssc-opt`` console command of the wheel: the same command line as the Rust binary
(``ssc_opt_cli::run``), with the same messages and exit codes."""

import signal
import sys

from . import _native


def main() -> None:
    # Ctrl-C stops the command at once, as it stops the binary; Python's own handler would only
    # set a flag that the native code never looks at.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(_native.cli_main(["ssc-opt", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
