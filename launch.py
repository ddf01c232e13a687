"""Opens the studio in the browser: python launch.py [--port 7860] [--host 127.0.0.1] [--workspace DIR]."""
import sys

from studio.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
