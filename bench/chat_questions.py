"""The chat benchmark's questions: small coding tasks, each one Python function checked by tests.

Written for Forecode (no public benchmark's text). Each question names the function and its
parameters, says what it must return and gives the edge cases its tests check, so a correct
answer is decided by the model's skill, not by guessing what was meant. The tests are plain
``assert`` statements run against the function the answer defines (``bench.chat.run_tests``).

Keep the set fixed: figures from different commits compare only on the same questions. Add new
questions at the end (``--limit N`` takes the first N).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QUESTIONS", "Question"]


@dataclass(frozen=True)
class Question:
    id: str
    function: str  # the name the answer must define
    prompt: str  # what the user types into the chat
    tests: str  # asserts over ``function``; run after the answer's code is loaded


QUESTIONS: tuple[Question, ...] = (
    Question(
        "count_vowels",
        "count_vowels",
        "Write a Python function `count_vowels(text)` that returns how many vowels (a, e, i, "
        "o, u, in either case) the string contains.",
        """
assert count_vowels("") == 0
assert count_vowels("rhythm") == 0
assert count_vowels("Forecode") == 4
assert count_vowels("AEIOU aeiou") == 10
""",
    ),
    Question(
        "is_palindrome",
        "is_palindrome",
        "Write a Python function `is_palindrome(text)` that returns True when the string reads "
        "the same backwards, ignoring case and every character that is not a letter or a digit.",
        """
assert is_palindrome("")
assert is_palindrome("A man, a plan, a canal: Panama!")
assert is_palindrome("No 'x' in Nixon")
assert not is_palindrome("forecode")
assert not is_palindrome("ab1")
""",
    ),
    Question(
        "quad_hex",
        "quad_hex",
        "Write a Python function `quad_hex(n)` that returns a list of strings for the numbers 1 "
        'to n: "QuadHex" for multiples of both 4 and 6, "Quad" for other multiples of 4, '
        '"Hex" for other multiples of 6, and the number itself as a string otherwise.',
        """
assert quad_hex(0) == []
assert quad_hex(6) == ["1", "2", "3", "Quad", "5", "Hex"]
assert quad_hex(12)[11] == "QuadHex"
assert quad_hex(24)[23] == "QuadHex" and quad_hex(24)[15] == "Quad" and quad_hex(24)[17] == "Hex"
""",
    ),
    Question(
        "flatten",
        "flatten",
        "Write a Python function `flatten(nested)` that takes a list whose items may be lists "
        "nested to any depth and returns one flat list of the non-list items, in order.",
        """
assert flatten([]) == []
assert flatten([1, [2, [3, [4]], 5], [[6]]]) == [1, 2, 3, 4, 5, 6]
assert flatten([[], [[]], "ab"]) == ["ab"]
assert flatten([(1, 2), [3]]) == [(1, 2), 3]
""",
    ),
    Question(
        "chunked",
        "chunked",
        "Write a Python function `chunked(items, size)` that splits a list into consecutive "
        "lists of `size` items (the last one may be shorter). It raises ValueError when size "
        "is less than 1.",
        """
assert chunked([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
assert chunked([], 3) == []
assert chunked([1, 2], 5) == [[1, 2]]
try:
    chunked([1], 0)
except ValueError:
    pass
else:
    raise AssertionError("size 0 must raise ValueError")
""",
    ),
    Question(
        "word_counts",
        "word_counts",
        "Write a Python function `word_counts(text)` that returns a dict mapping each word to "
        "how often it occurs. Words are runs of letters; compare them in lower case.",
        """
assert word_counts("") == {}
assert word_counts("The cat and the hat.") == {"the": 2, "cat": 1, "and": 1, "hat": 1}
assert word_counts("go, GO; go!") == {"go": 3}
assert word_counts("it's 4 u") == {"it": 1, "s": 1, "u": 1}
""",
    ),
    Question(
        "second_largest",
        "second_largest",
        "Write a Python function `second_largest(numbers)` that returns the second largest "
        "distinct value in a list of numbers, or None when there are fewer than two distinct "
        "values.",
        """
assert second_largest([3, 1, 4, 1, 5]) == 4
assert second_largest([7, 7, 7]) is None
assert second_largest([]) is None
assert second_largest([5, 5, 2]) == 2
assert second_largest([-1, -3, -2]) == -2
""",
    ),
    Question(
        "merge_intervals",
        "merge_intervals",
        "Write a Python function `merge_intervals(intervals)` that takes a list of (start, end) "
        "tuples and returns a list of tuples where overlapping or touching intervals are merged, "
        "sorted by start.",
        """
assert merge_intervals([]) == []
assert merge_intervals([(5, 7), (1, 3), (2, 4)]) == [(1, 4), (5, 7)]
assert merge_intervals([(1, 2), (2, 3)]) == [(1, 3)]
assert merge_intervals([(1, 10), (2, 3), (11, 12)]) == [(1, 10), (11, 12)]
""",
    ),
    Question(
        "rle_encode",
        "rle_encode",
        "Write a Python function `rle_encode(text)` that run-length encodes a string: each run "
        "of the same character becomes the character followed by the run's length, so "
        '"aaabcc" becomes "a3b1c2".',
        """
assert rle_encode("") == ""
assert rle_encode("aaabcc") == "a3b1c2"
assert rle_encode("abc") == "a1b1c1"
assert rle_encode("zzzzzzzzzzzz") == "z12"
assert rle_encode("aabaa") == "a2b1a2"
""",
    ),
    Question(
        "rle_decode",
        "rle_decode",
        "Write a Python function `rle_decode(code)` that reverses run-length encoding: the "
        "input is letters each followed by a count of one or more digits, for example "
        '"a3b1c12", and the result repeats each letter count times.',
        """
assert rle_decode("") == ""
assert rle_decode("a3b1c2") == "aaabcc"
assert rle_decode("x12") == "x" * 12
assert rle_decode("a1a1") == "aa"
""",
    ),
    Question(
        "is_prime",
        "is_prime",
        "Write a Python function `is_prime(n)` that returns True when the integer n is a prime "
        "number and False otherwise (including for 0, 1 and negative numbers).",
        """
assert [n for n in range(-5, 30) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
assert is_prime(7919)
assert not is_prime(7917)
assert not is_prime(1_000_000)
""",
    ),
    Question(
        "primes_below",
        "primes_below",
        "Write a Python function `primes_below(limit)` that returns the list of all prime "
        "numbers smaller than limit, in increasing order.",
        """
assert primes_below(0) == []
assert primes_below(2) == []
assert primes_below(3) == [2]
assert primes_below(20) == [2, 3, 5, 7, 11, 13, 17, 19]
assert len(primes_below(10_000)) == 1229
""",
    ),
    Question(
        "gcd_all",
        "gcd_all",
        "Write a Python function `gcd_all(numbers)` that returns the greatest common divisor of "
        "all the integers in a list (always non-negative), and 0 for an empty list.",
        """
assert gcd_all([]) == 0
assert gcd_all([12, 18, 24]) == 6
assert gcd_all([7]) == 7
assert gcd_all([-4, 6]) == 2
assert gcd_all([0, 5]) == 5
""",
    ),
    Question(
        "roman_to_int",
        "roman_to_int",
        "Write a Python function `roman_to_int(numeral)` that converts a Roman numeral string "
        'such as "MCMXCIV" to an integer.',
        """
assert roman_to_int("I") == 1
assert roman_to_int("IV") == 4
assert roman_to_int("XLII") == 42
assert roman_to_int("MCMXCIV") == 1994
assert roman_to_int("MMMCMXCIX") == 3999
""",
    ),
    Question(
        "int_to_roman",
        "int_to_roman",
        "Write a Python function `int_to_roman(number)` that converts an integer from 1 to 3999 "
        'to a Roman numeral string using subtractive notation (4 is "IV").',
        """
assert int_to_roman(1) == "I"
assert int_to_roman(4) == "IV"
assert int_to_roman(9) == "IX"
assert int_to_roman(58) == "LVIII"
assert int_to_roman(1994) == "MCMXCIV"
assert int_to_roman(3999) == "MMMCMXCIX"
""",
    ),
    Question(
        "transpose",
        "transpose",
        "Write a Python function `transpose(matrix)` that returns the transpose of a matrix "
        "given as a list of equally long rows (lists), as a new list of lists.",
        """
assert transpose([]) == []
assert transpose([[1, 2, 3]]) == [[1], [2], [3]]
assert transpose([[1, 2], [3, 4], [5, 6]]) == [[1, 3, 5], [2, 4, 6]]
m = [[1, 2], [3, 4]]
assert transpose(m) == [[1, 3], [2, 4]] and m == [[1, 2], [3, 4]]
""",
    ),
    Question(
        "rotate_left",
        "rotate_left",
        "Write a Python function `rotate_left(items, k)` that returns a new list with the items "
        "rotated k places to the left; k may be larger than the list's length, and an empty "
        "list stays empty.",
        """
assert rotate_left([1, 2, 3, 4, 5], 2) == [3, 4, 5, 1, 2]
assert rotate_left([1, 2, 3], 0) == [1, 2, 3]
assert rotate_left([1, 2, 3], 4) == [2, 3, 1]
assert rotate_left([], 3) == []
""",
    ),
    Question(
        "snake_to_camel",
        "snake_to_camel",
        "Write a Python function `snake_to_camel(name)` that turns a snake_case name into "
        'camelCase: "parse_http_reply" becomes "parseHttpReply". The input is lower-case '
        "words joined by single underscores.",
        """
assert snake_to_camel("name") == "name"
assert snake_to_camel("parse_http_reply") == "parseHttpReply"
assert snake_to_camel("a_b_c") == "aBC"
""",
    ),
    Question(
        "camel_to_snake",
        "camel_to_snake",
        "Write a Python function `camel_to_snake(name)` that turns a camelCase name into "
        "snake_case: every upper-case letter starts a new word, written in lower case after an "
        'underscore, so "parseHttpReply" becomes "parse_http_reply".',
        """
assert camel_to_snake("name") == "name"
assert camel_to_snake("parseHttpReply") == "parse_http_reply"
assert camel_to_snake("aBC") == "a_b_c"
""",
    ),
    Question(
        "balanced",
        "balanced",
        "Write a Python function `balanced(text)` that returns True when the brackets (), [] "
        "and {} in the string are balanced and properly nested. Other characters are ignored.",
        """
assert balanced("")
assert balanced("f(a[1], {b: 2})")
assert not balanced("(]")
assert not balanced("(()")
assert not balanced(")(")
assert balanced("no brackets")
""",
    ),
    Question(
        "dedupe",
        "dedupe",
        "Write a Python function `dedupe(items)` that returns a list of the items without "
        "duplicates, keeping the first occurrence of each and the original order.",
        """
assert dedupe([]) == []
assert dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]
assert dedupe(["b", "a", "b"]) == ["b", "a"]
""",
    ),
    Question(
        "group_by_length",
        "group_by_length",
        "Write a Python function `group_by_length(words)` that returns a dict mapping each word "
        "length to the list of words of that length, in the order they appear.",
        """
assert group_by_length([]) == {}
assert group_by_length(["hi", "yes", "no", "abc", "x"]) == {
    2: ["hi", "no"], 3: ["yes", "abc"], 1: ["x"]}
""",
    ),
    Question(
        "binary_search",
        "binary_search",
        "Write a Python function `binary_search(items, target)` that returns the index of "
        "target in the sorted list items, or -1 when it is not there. Use binary search.",
        """
data = [1, 3, 5, 7, 9, 11]
assert all(binary_search(data, v) == i for i, v in enumerate(data))
assert binary_search(data, 4) == -1
assert binary_search(data, 12) == -1
assert binary_search([], 1) == -1
""",
    ),
    Question(
        "are_anagrams",
        "are_anagrams",
        "Write a Python function `are_anagrams(a, b)` that returns True when the two strings "
        "use the same letters the same number of times, ignoring spaces and case.",
        """
assert are_anagrams("Listen", "Silent")
assert are_anagrams("dormitory", "dirty room")
assert not are_anagrams("abc", "abd")
assert not are_anagrams("aab", "ab")
""",
    ),
    Question(
        "digit_sum",
        "digit_sum",
        "Write a Python function `digit_sum(n)` that returns the sum of the decimal digits of "
        "the integer n (for a negative n, of its absolute value).",
        """
assert digit_sum(0) == 0
assert digit_sum(12345) == 15
assert digit_sum(-908) == 17
""",
    ),
    Question(
        "fibonacci",
        "fibonacci",
        "Write a Python function `fibonacci(n)` that returns the n-th Fibonacci number, with "
        "fibonacci(0) == 0 and fibonacci(1) == 1. It must be fast for n up to 90.",
        """
assert [fibonacci(i) for i in range(10)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]
assert fibonacci(90) == 2880067194370816120
""",
    ),
    Question(
        "caesar",
        "caesar",
        "Write a Python function `caesar(text, shift)` that shifts every letter by shift places "
        "in the alphabet, wrapping around and keeping its case; other characters stay as they "
        "are. The shift may be negative or larger than 26.",
        """
assert caesar("abc", 1) == "bcd"
assert caesar("xyz", 3) == "abc"
assert caesar("Hello, World!", 5) == "Mjqqt, Btwqi!"
assert caesar("Mjqqt", -5) == "Hello"
assert caesar("a", 27) == "b"
""",
    ),
    Question(
        "parse_pairs",
        "parse_pairs",
        "Write a Python function `parse_pairs(text)` that parses a string like "
        '"a=1; b = 2;c=3" into a dict of strings {"a": "1", "b": "2", "c": "3"}: '
        "pairs are separated by semicolons, keys and values are stripped of spaces, and empty "
        "pieces are skipped.",
        """
assert parse_pairs("") == {}
assert parse_pairs("a=1; b = 2;c=3") == {"a": "1", "b": "2", "c": "3"}
assert parse_pairs("x=1;;  ;y = hello world ;") == {"x": "1", "y": "hello world"}
""",
    ),
    Question(
        "moving_average",
        "moving_average",
        "Write a Python function `moving_average(values, window)` that returns the list of the "
        "averages of every run of `window` consecutive values (so len(values) - window + 1 "
        "averages, or an empty list when there are fewer values than window).",
        """
assert moving_average([1, 2, 3, 4, 5], 2) == [1.5, 2.5, 3.5, 4.5]
assert moving_average([1, 2, 3], 3) == [2.0]
assert moving_average([1, 2], 3) == []
assert moving_average([4, 4, 4, 4], 1) == [4, 4, 4, 4]
""",
    ),
    Question(
        "most_common_char",
        "most_common_char",
        "Write a Python function `most_common_char(text)` that returns the character that "
        "occurs most often in the string, not counting spaces. On a tie it returns the one that "
        "appears first in the string.",
        """
assert most_common_char("hello world") == "l"
assert most_common_char("abba") == "a"
assert most_common_char("b a a b") == "b"
assert most_common_char("zyx") == "z"
""",
    ),
    Question(
        "matmul",
        "matmul",
        "Write a Python function `matmul(a, b)` that multiplies two matrices given as lists of "
        "rows and returns the product as a list of lists. It raises ValueError when the number "
        "of columns of a differs from the number of rows of b.",
        """
assert matmul([[1, 2], [3, 4]], [[5, 6], [7, 8]]) == [[19, 22], [43, 50]]
assert matmul([[1, 2, 3]], [[1], [2], [3]]) == [[14]]
try:
    matmul([[1, 2]], [[1, 2]])
except ValueError:
    pass
else:
    raise AssertionError("a shape mismatch must raise ValueError")
""",
    ),
    Question(
        "format_duration",
        "format_duration",
        "Write a Python function `format_duration(seconds)` that formats a non-negative number "
        'of seconds as hours, minutes and seconds like "1h 2m 5s", leaving out parts that are '
        'zero; 0 seconds gives "0s".',
        """
assert format_duration(0) == "0s"
assert format_duration(5) == "5s"
assert format_duration(60) == "1m"
assert format_duration(3725) == "1h 2m 5s"
assert format_duration(7200) == "2h"
assert format_duration(3605) == "1h 5s"
""",
    ),
    Question(
        "is_ipv4",
        "is_ipv4",
        "Write a Python function `is_ipv4(text)` that returns True when the string is a dotted "
        "IPv4 address: four decimal numbers from 0 to 255 separated by dots, with no leading "
        'zeros ("0" itself is fine) and nothing else.',
        """
assert is_ipv4("192.168.0.1")
assert is_ipv4("0.0.0.0")
assert is_ipv4("255.255.255.255")
assert not is_ipv4("256.1.1.1")
assert not is_ipv4("1.2.3")
assert not is_ipv4("01.2.3.4")
assert not is_ipv4("1.2.3.4.5")
assert not is_ipv4("a.b.c.d")
assert not is_ipv4("1.2.3.-4")
""",
    ),
    Question(
        "count_pairs",
        "count_pairs",
        "Write a Python function `count_pairs(numbers, target)` that returns how many pairs of "
        "positions i < j in the list have numbers[i] + numbers[j] == target.",
        """
assert count_pairs([], 3) == 0
assert count_pairs([1, 2, 3, 4], 5) == 2
assert count_pairs([2, 2, 2], 4) == 3
assert count_pairs([1, 1], 3) == 0
""",
    ),
    Question(
        "common_prefix",
        "common_prefix",
        "Write a Python function `common_prefix(words)` that returns the longest string that "
        "every word in the list starts with (an empty string for an empty list).",
        """
assert common_prefix([]) == ""
assert common_prefix(["flower", "flow", "flight"]) == "fl"
assert common_prefix(["same", "same"]) == "same"
assert common_prefix(["a", "b"]) == ""
assert common_prefix(["alone"]) == "alone"
""",
    ),
    Question(
        "title_case",
        "title_case",
        "Write a Python function `title_case(text)` that capitalises the first letter of every "
        'word and lower-cases the rest, except that the words "a", "an", "the", "of" and '
        '"and" stay lower case unless they are the first word. Words are separated by single '
        "spaces.",
        """
assert title_case("") == ""
assert title_case("the lord OF the rings") == "The Lord of the Rings"
assert title_case("war and peace") == "War and Peace"
assert title_case("a tale of two cities") == "A Tale of Two Cities"
""",
    ),
    Question(
        "spiral",
        "spiral",
        "Write a Python function `spiral(matrix)` that returns the elements of a rectangular "
        "matrix (a list of rows) in clockwise spiral order, starting at the top-left corner.",
        """
assert spiral([]) == []
assert spiral([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == [1, 2, 3, 6, 9, 8, 7, 4, 5]
assert spiral([[1, 2, 3, 4], [5, 6, 7, 8]]) == [1, 2, 3, 4, 8, 7, 6, 5]
assert spiral([[1], [2], [3]]) == [1, 2, 3]
""",
    ),
)
