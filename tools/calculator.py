"""Built-in tool: arithmetic, evaluated safely.

No ``eval``: the expression is parsed with :mod:`ast` and only a whitelist is evaluated (numbers,
``+ - * / // % **``, parentheses, unary minus, ``sqrt``/``abs``/``round``, "15% of 80").  Names,
attributes, subscripts, other calls, strings and comprehensions are refused, and so is anything that
could take long or grow huge: the input is at most :data:`MAX_CHARS` characters and :data:`MAX_DEPTH`
deep, an exponent at most :data:`MAX_EXPONENT` and every value (intermediate ones included) under
:data:`MAX_MAGNITUDE`, each checked *before* the operation runs (``9**9**9`` is refused at once).

Results are said with digits, thousands grouped ("1,500", "12.5", "minus 3"): the speech normaliser
turns them into words, and the commas keep it from reading a four-digit result as a year or a long
one digit by digit like a phone number; digits also keep the LLM's text and the call record exact.
"""
from __future__ import annotations

import ast
import math
import operator
import re
from typing import Callable, Dict, Union

from pydantic import BaseModel, Field

from voiceagent.dialog.tool_support import ToolReply
from voiceagent.dialog.tools import ToolContext, ToolError, tool

MAX_CHARS = 200
MAX_DEPTH = 30          # nodes from the root: "((((1))))" counts its operations, not its parentheses
MAX_EXPONENT = 100
MAX_MAGNITUDE = 1e100
MAX_LITERAL_DIGITS = 40

Number = Union[int, float]

_BINARY: Dict[type, Callable[[Number, Number], Number]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_WORDS = {ast.Add: "plus", ast.Sub: "minus", ast.Mult: "times", ast.Div: "divided by",
          ast.FloorDiv: "divided by, rounded down,", ast.Mod: "modulo", ast.Pow: "to the power of"}


class CalcArgs(BaseModel):
    expression: str = Field(min_length=1, max_length=MAX_CHARS, description=(
        "The arithmetic to do, in digits and symbols: + - * / // % ** ( ), sqrt(x), abs(x), round(x, n), "
        "'15% of 80'. Example: '(12.5 * 4) / 3'."))


class Refused(ToolError):
    """Not something this calculator evaluates; the message says why."""


def _normalize(text: str) -> str:
    t = text.strip().lower()
    t = t.replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**")
    t = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", t)                          # "1,500"
    t = re.sub(r"(?<=[\d)])\s*x\s*(?=[\d(])", "*", t)                     # "3 x 4"
    t = re.sub(r"(\d+(?:\.\d+)?)\s*(?:%|percent)\s+of\b", r"(\1/100)*", t)  # "15% of 80"
    t = re.sub(r"\bsquare root of\s+(\d+(?:\.\d+)?)", r"sqrt(\1)", t)
    return t


def _check(value: Number) -> Number:
    if isinstance(value, float) and not math.isfinite(value):
        raise Refused("the result is not a finite number")
    if abs(value) > MAX_MAGNITUDE:
        raise Refused("the number is too large for me to say")
    return value


def _power(base: Number, exp: Number) -> Number:
    if abs(exp) > MAX_EXPONENT:
        raise Refused(f"exponents above {MAX_EXPONENT} are not supported")
    if base != 0 and abs(exp) * math.log10(abs(base)) > math.log10(MAX_MAGNITUDE):
        raise Refused("the number is too large for me to say")
    if base == 0 and exp < 0:
        raise ZeroDivisionError
    if base < 0 and not float(exp).is_integer():
        raise Refused("a negative number to a fractional power is not a real number")
    return base ** exp


def _sqrt(x: Number) -> Number:
    if x < 0:
        raise Refused("a negative number has no real square root")
    root = math.isqrt(x) if isinstance(x, int) else None
    return root if root is not None and root * root == x else math.sqrt(x)


def _round(x: Number, digits: Number = 0) -> Number:
    if not isinstance(digits, int) or not 0 <= digits <= 10:
        raise Refused("round takes a whole number of digits from 0 to 10")
    return round(x) if digits == 0 else round(x, digits)


_FUNCS: Dict[str, Callable[..., Number]] = {"sqrt": _sqrt, "abs": abs, "round": _round}


def evaluate(node: ast.AST, depth: int = 0) -> Number:
    if depth > MAX_DEPTH:
        raise Refused("the expression is nested too deeply")
    if isinstance(node, ast.Expression):
        return evaluate(node.body, depth + 1)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if isinstance(node.value, int) and len(str(node.value)) > MAX_LITERAL_DIGITS:
            raise Refused("a number in it is too long")
        return _check(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = evaluate(node.operand, depth + 1)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = evaluate(node.left, depth + 1)
        right = evaluate(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            return _check(_power(left, right))
        if isinstance(node.op, ast.Mult) and left and right and \
                math.log10(abs(left)) + math.log10(abs(right)) > math.log10(MAX_MAGNITUDE):
            raise Refused("the number is too large for me to say")
        return _check(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS \
            and not node.keywords and 1 <= len(node.args) <= (2 if node.func.id == "round" else 1):
        args = [evaluate(a, depth + 1) for a in node.args]
        return _check(_FUNCS[node.func.id](*args))
    raise Refused(f"only numbers and arithmetic can be calculated ({type(node).__name__} is not allowed)")


def calculate(expression: str) -> Number:
    text = _normalize(expression)
    if len(text) > MAX_CHARS:
        raise Refused(f"the expression is longer than {MAX_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise Refused("that is not an arithmetic expression I can read") from None
    return evaluate(tree)


def say_number(value: Number) -> str:
    """Digits a TTS reads well: integral values without decimals, else at most 4 significant decimals;
    thousands grouped; negative as 'minus'; tiny and huge values as 'about ...'."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    sign = "minus " if value < 0 else ""
    v = abs(value)
    if isinstance(v, int):
        return sign + (f"{v:,}" if v < 10**15 else _scientific(v))
    if v >= 1e15:
        return sign + "about " + _scientific(v)
    if v < 0.0001:
        return "about 0" if v < 1e-12 else sign + "about " + _scientific(v)
    v = float(f"{v:.12g}")  # 0.1 + 0.2 is 0.3, not 0.30000000000000004
    text = f"{v:,.4f}".rstrip("0").rstrip(".")
    exact = float(text.replace(",", "")) == v
    return sign + ("" if exact else "about ") + text


def _scientific(v: Number) -> str:
    mantissa, exp = f"{float(v):.3e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')} times 10 to the power of {int(exp)}"


def _name(node: ast.Call) -> str:
    return node.func.id if isinstance(node.func, ast.Name) else ""


def _is_percent(node: ast.AST) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and isinstance(node.left, ast.BinOp) \
        and isinstance(node.left.op, ast.Div) and isinstance(node.left.right, ast.Constant) \
        and node.left.right.value == 100 and isinstance(node.left.left, ast.Constant)


def _words(node: ast.AST) -> str:
    """The expression read back ("12 times 3"), so the caller hears what was calculated."""
    if isinstance(node, ast.Expression):
        return _words(node.body)
    if isinstance(node, ast.Constant):
        return say_number(node.value)
    if isinstance(node, ast.UnaryOp):
        return ("minus " if isinstance(node.op, ast.USub) else "") + _words(node.operand)
    if isinstance(node, ast.BinOp):
        if _is_percent(node):
            return f"{_words(node.left.left)} percent of {_words(node.right)}"  # type: ignore[attr-defined]
        return f"{_words(node.left)} {_WORDS[type(node.op)]} {_words(node.right)}"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return f"the square root of {_words(node.args[0])}"  # the only call read back
    return "that"


@tool("calculate", capability="do arithmetic: add, subtract, multiply, divide, powers, square roots, percentages")
def calculate_tool(args: CalcArgs, ctx: ToolContext) -> ToolReply:
    """Calculate an arithmetic expression exactly. Use it for any sum, product, division, power, square root or
    percentage the caller asks for instead of working it out yourself. The answer is read to the caller."""
    try:
        value = calculate(args.expression)
    except ZeroDivisionError:
        said = "That's a division by zero, which has no answer."
        return ToolReply(text=f"{args.expression}: division by zero, undefined.", speak=said,
                         data={"expression": args.expression, "error": "division by zero"})
    except Refused as exc:
        raise ToolError(f"cannot calculate {args.expression[:60]!r}: {exc}") from None
    spoken = say_number(value)
    tree = ast.parse(_normalize(args.expression), mode="eval")
    operations = sum(isinstance(n, ast.BinOp) or (isinstance(n, ast.Call) and _name(n) != "sqrt") * 2
                     for n in ast.walk(tree))
    # one operation is read back ("12 times 3 is 36"); more would need the parentheses said too
    said = f"{_words(tree)} is {spoken}." if operations <= 1 or _is_percent(tree.body) else f"That comes to {spoken}."
    said = said[0].upper() + said[1:]
    return ToolReply(text=f"{args.expression} = {value}", speak=said,
                     data={"expression": args.expression, "result": value})
