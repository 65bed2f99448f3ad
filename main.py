"""FAN Live: real-time facial-expression recognition. The command line lives in app/runs/cli.py
(`python main.py --help` lists the options)."""
import sys

from app.runs.cli import main

if __name__ == "__main__":
    sys.exit(main())
