"""A Gemini computer-use agent on agentdesktop (GEMINI_API_KEY, a running service, pip install -e '.[examples]'):
    python examples/gemini_loop.py "Open a terminal and run uname -a"
"""

import base64
import sys

from google import genai
from google.genai import types
from twisted.internet import defer, task, threads

from agentdesktop.client import DesktopClient

CONFIG = types.GenerateContentConfig(tools=[types.Tool(
    computer_use=types.ComputerUse(environment=types.Environment.ENVIRONMENT_DESKTOP))])


async def main(reactor: object, goal: str) -> None:
    desktop, gemini = DesktopClient("http://127.0.0.1:8790", token=None), genai.Client()
    first = await desktop.gemini([{"name": "take_screenshot", "args": {}}])
    png = base64.b64decode(first["function_responses"][0]["function_response"]["parts"][0]["inline_data"]["data"])
    contents = [types.Content(role="user", parts=[types.Part(text=goal), types.Part.from_bytes(data=png, mime_type="image/png")])]
    for _ in range(50):
        response = await threads.deferToThread(gemini.models.generate_content, model="gemini-3.5-flash",
                                               contents=contents, config=CONFIG)
        contents.append(response.candidates[0].content)
        if not response.function_calls:
            return print(response.text)
        risky = [c for c in response.function_calls if (c.args or {}).get("safety_decision")]
        for c in risky:  # the service never confirms on its own: a person does
            if await threads.deferToThread(input, f"{c.args['safety_decision']['explanation']} Allow? [y/N] ") != "y":
                return print("Stopped: not confirmed.")
        answer = await desktop.gemini([c.model_dump(mode="json", exclude_none=True) for c in response.function_calls],
                                      confirmed=[c.id or c.name for c in risky] or None)
        contents.append(types.Content(role="user", parts=answer["function_responses"]))


task.react(lambda reactor: defer.ensureDeferred(main(reactor, sys.argv[1])))
