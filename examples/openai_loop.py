"""An agent loop: OpenAI's computer tool driving agentdesktop (needs OPENAI_API_KEY)."""

import sys
from functools import partial

from openai import OpenAI
from twisted.internet import defer, task, threads

from agentdesktop.client import DesktopClient

MODEL, TOOLS = "gpt-5.4", [{"type": "computer"}]


async def main(reactor, goal="Open a terminal and show today's date."):
    desktop, model = DesktopClient("http://127.0.0.1:8790", token=None), OpenAI()
    ask = partial(threads.deferToThread, model.responses.create, model=MODEL, tools=TOOLS)
    response = await ask(input=goal)
    while calls := [item for item in response.output if item.type == "computer_call"]:
        items = []
        for call in calls:
            checks, acks = getattr(call, "pending_safety_checks", None) or [], None
            if checks:  # the service never acknowledges a check itself: ask the user
                print(*(f"{c.code}: {c.message}" for c in checks), sep="\n")
                if (await threads.deferToThread(input, "Proceed? [y/N] ")).lower() != "y":
                    return
                acks = [c.id for c in checks]
            answer = await desktop.openai(call.to_dict(mode="json"), acknowledged_safety_checks=acks)
            items.append(answer["output"])
            if answer["error"]:
                items.append({"role": "user", "content": "That failed: " + answer["error"]})
        response = await ask(previous_response_id=response.id, input=items)
    print(response.output_text)


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, *sys.argv[1:])))
