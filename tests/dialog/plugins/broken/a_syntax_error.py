from voiceagent.dialog.tools import tool
def oops(:
