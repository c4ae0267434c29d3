"""
The actions of C{/action} (and of batches): a table of small handlers, one
per action, registered by name (L{table.action}) in the modules
L{pointer}, L{keyboard} and L{screen}; and the L{ActionRunner} that runs
the steps they return.
"""

from agentdesktop.actions import keyboard, pointer, screen
from agentdesktop.actions.runner import ActionRunner
from agentdesktop.actions.table import Space, Step, names, prepare

__all__ = ["ActionRunner", "Space", "Step", "keyboard", "names", "pointer", "prepare", "screen"]
