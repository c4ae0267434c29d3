"""
Claude drives the desktop through Anthropic's computer toolset: the model's
tool_use blocks go to agentdesktop as they are; its tool_result blocks go back.
Start the service (scripts/dev run), set ANTHROPIC_API_KEY, then:

    .venv/bin/pip install -e '.[examples]'
    .venv/bin/python examples/anthropic_loop.py "Open a terminal and show the date"
"""

import os
import sys

import anthropic
from twisted.internet import task, threads

from agentdesktop.client import DesktopClient

MODEL = os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-5-5")
TOOLS = [{"type": "computer_toolset_20260801"}]


async def main(reactor: object, goal: str) -> None:
    claude = anthropic.Anthropic()
    desktop = DesktopClient("http://127.0.0.1:8790", token=None)
    messages: list = [{"role": "user", "content": goal}]
    while True:
        response = await threads.deferToThread(
            claude.messages.create, model=MODEL, max_tokens=4096, tools=TOOLS, messages=messages)
        messages.append({"role": "assistant", "content": response.content})
        uses = [block.model_dump() for block in response.content if block.type == "tool_use"]
        if not uses:
            print("".join(block.text for block in response.content if block.type == "text"))
            return
        answer = await desktop.anthropic(uses)
        messages.append({"role": "user", "content": answer["content"]})


task.react(main, sys.argv[1:2] or ["Take a screenshot and describe the desktop."])
