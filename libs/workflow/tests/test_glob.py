import pytest
from conveyor_workflow._glob import GlobError, compile_filter, filter_matches, filters_match
from hypothesis import given, settings
from hypothesis import strategies as st

# Every row of the filter pattern cheat sheet: (patterns, documented matches, documented non-matches).
# Non-matches the cheat sheet only implies by its description are marked with a comment.
BRANCH_AND_TAG_ROWS = [
    (["feature/*"], ["feature/my-branch", "feature/your-branch"], ["feature/beta-a/my-branch"]),  # no slash
    (
        ["feature/**"],
        ["feature/beta-a/my-branch", "feature/your-branch", "feature/mona/the/octocat"],
        ["main"],
    ),
    (
        ["main", "releases/mona-the-octocat"],
        ["main", "releases/mona-the-octocat"],
        ["mainline", "releases/mona"],  # exact names only
    ),
    (["*"], ["main", "releases"], ["releases/v1"]),  # no slash
    (["**"], ["all/the/branches", "every/tag"], []),
    (["*feature"], ["mona-feature", "feature", "ver-10-feature"], ["feature-x"]),
    (["v2*"], ["v2", "v2.0", "v2.9"], ["v1.2", "xv2"]),
    (["v[12].[0-9]+.[0-9]+"], ["v1.10.1", "v2.0.0"], ["v3.0.0", "v1.0", "v1.a.0"]),
]

PATH_ROWS = [
    (["*"], ["README.md", "server.rb"], ["docs/README.md"]),
    (["*.jsx?"], ["page.js", "page.jsx"], ["page.jsxx", "page.j"]),
    (["**"], ["all/the/files.md"], []),
    (["*.js"], ["app.js", "index.js"], ["js/index.js"]),  # root only
    (["**.js"], ["index.js", "js/index.js", "src/js/app.js"], ["index.jsx"]),
    (["docs/*"], ["docs/README.md", "docs/file.txt"], ["docs/mona/octocat.txt", "README.md"]),
    (["docs/**"], ["docs/README.md", "docs/mona/octocat.txt"], ["src/docs/a.md"]),  # from the root
    (
        ["docs/**/*.md"],
        ["docs/README.md", "docs/mona/hello-world.md", "docs/a/markdown/file.md"],
        ["docs/a/file.txt"],
    ),
    (["**/docs/**"], ["docs/hello.md", "dir/docs/my-file.txt", "space/docs/plan/space.doc"], ["mydocs/a"]),
    (["**/README.md"], ["README.md", "js/README.md"], ["js/README.md.bak", "xREADME.md"]),
    (["**/*src/**"], ["a/src/app.js", "my-src/code/js/app.js"], ["src-a/app.js"]),
    (["**/*-post.md"], ["my-post.md", "path/their-post.md"], ["my-post.mdx"]),
    (
        ["**/migrate-*.sql"],
        ["migrate-10909.sql", "db/migrate-v1.0.sql", "db/sept/migrate-v1.sql"],
        ["db/migrate.sql"],
    ),
    (["*.md", "!README.md"], ["hello.md"], ["README.md", "docs/hello.md"]),
    (["*.md", "!README.md", "README*"], ["hello.md", "README.md", "README.doc"], []),
]


@pytest.mark.parametrize(("patterns", "matches", "non_matches"), BRANCH_AND_TAG_ROWS + PATH_ROWS)
def test_cheat_sheet_row(patterns, matches, non_matches):
    for name in matches:
        assert filters_match(patterns, name), name
    for name in non_matches:
        assert not filters_match(patterns, name), name


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("[CB]at", "Cat", True),
        ("[CB]at", "Bat", True),
        ("[CB]at", "Hat", False),
        ("[1-2]00", "100", True),
        ("[1-2]00", "300", False),
        ("[0-9a-z]", "q", True),
        ("[0-9a-z]", "Q", False),
        ("[a-]x", "-x", True),
        ("a+b", "ab", True),
        ("a+b", "aaab", True),
        ("a+b", "b", False),
        ("colou?r", "color", True),
        ("colou?r", "colour", True),
        ("colou?r", "colouur", False),
        ("[0-9]?x", "x", True),
        ("[0-9]?x", "7x", True),
        ("release/v[0-9].[0-9]", "release/v1.2", True),
        ("Main", "main", False),
        ("**/", "a/", True),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "ab", False),
        ("a**/b", "ax/y/b", True),
        ("a**/b", "ab", False),
        ("a*b*c", "a-b-c", True),
        ("a*b*c", "a/b/c", False),
        # `\` makes the next character literal.
        (r"C\+\+", "C++", True),
        (r"C\+\+", "CC", False),
        (r"\*", "*", True),
        (r"\*", "x", False),
        (r"a\?", "a?", True),
        (r"\!important", "!important", True),
        (r"\\", "\\", True),
        (r"[\]]", "]", True),
        # A `!` that is not first has no special meaning.
        ("a!b", "a!b", True),
    ],
)
def test_filter_syntax(pattern, name, expected):
    assert filter_matches(pattern, name) is expected


def test_a_leading_bang_negates_and_an_escaped_one_does_not():
    assert compile_filter("!docs/**").negated
    assert not compile_filter(r"\!docs").negated
    assert filters_match(["**", "!docs/**"], "src/a.py")
    assert not filters_match(["**", "!docs/**"], "docs/a.md")
    assert filters_match(["**", "!docs/**", "docs/keep.md"], "docs/keep.md")
    assert not filters_match(["!docs/**"], "src/a.py")  # a negation alone includes nothing
    assert not filters_match([], "anything")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "must not be empty"),
        ("!", "negates nothing"),
        ("?a", "must follow a character"),
        ("+", "must follow a character"),
        ("*?", "cannot repeat a wildcard"),
        ("**+", "cannot repeat a wildcard"),
        ("***", "'\\*\\*\\*' is not a wildcard"),
        ("a?+", "cannot follow another"),
        ("[abc", "never closed"),
        ("[]", "lists no character"),
        ("[a-Z]", "within a-z, A-Z or 0-9"),
        ("[!-/]", "within a-z, A-Z or 0-9"),
        ("abc\\", "escapes nothing"),
    ],
)
def test_invalid_patterns_raise_a_value_error_saying_why(pattern, message):
    with pytest.raises(GlobError, match=message):
        compile_filter(pattern)
    assert issubclass(GlobError, ValueError)


def test_a_non_string_pattern_is_a_glob_error():
    with pytest.raises(GlobError, match="must be a string"):
        compile_filter(["a"])  # type: ignore[arg-type]


def test_matching_is_linear_not_backtracking():
    pattern = "*a" * 30 + "*b"
    assert not filter_matches(pattern, "a" * 5000)


GLOB_ALPHABET = st.sampled_from(["*", "**", "?", "+", "[", "]", "-", "!", "\\", "/", "a", "b", "0", "9", ".", "Z"])


@settings(max_examples=300)
@given(st.lists(GLOB_ALPHABET, max_size=12).map("".join), st.text("ab/.*?+[]!\\-0Z", max_size=12))
def test_random_patterns_and_names_raise_only_value_errors(pattern, name):
    try:
        result = filters_match([pattern], name)
    except ValueError:
        return
    assert isinstance(result, bool)


@given(st.text(st.characters(blacklist_characters="*?+[]!\\"), min_size=1, max_size=20))
def test_a_pattern_without_special_characters_matches_exactly_itself(name):
    assert filter_matches(name, name)
    assert not filter_matches(name, name + "x")


@given(st.lists(st.text("ab/", min_size=1, max_size=4), min_size=1, max_size=4).map("/".join))
def test_double_star_matches_every_path_and_single_star_only_slashless_ones(path):
    assert filter_matches("**", path)
    assert filter_matches("*", path) is ("/" not in path)
