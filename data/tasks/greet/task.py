"""An on-demand task: no schedule; runs when asked, with parameters."""

import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--greeting", default="Hi")
parser.add_argument("--shout", action="store_true")
options = parser.parse_args()

name = os.environ.get("TASSE_PARAM_NAME", "world")
message = f"{options.greeting}, {name}! (trigger: {os.environ['TASSE_TRIGGER']})"
print(message.upper() if options.shout else message)
