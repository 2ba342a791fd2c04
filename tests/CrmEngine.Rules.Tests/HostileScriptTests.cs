using CrmEngine.Abstractions.Rules;
using CrmEngine.Rules.Scripting;

namespace CrmEngine.Rules.Tests;

/// <summary>
/// The catalogue of hostile scripts: each must be stopped (or made harmless) with a clear error,
/// and the engine must go on serving ordinary scripts afterwards.
/// </summary>
public class HostileScriptTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly JsRuleEngine _engine = fixture.Engine;

    /// <summary>name, script, expected error kind, the budgets that may stop it first (None for runtime errors).</summary>
    public static TheoryData<string, string, RuleErrorKind, RuleBudgetKind[]> Catalogue => new()
    {
        { "endless while", "while (true) {}", RuleErrorKind.Budget, [RuleBudgetKind.Statements] },
        { "endless for with empty body", "for (;;) ;", RuleErrorKind.Budget, [RuleBudgetKind.Statements] },
        { "slow loop under a roomy statement budget", "// @statements 100000000\nlet x = 0; while (true) { x++; }", RuleErrorKind.Budget, [RuleBudgetKind.Time] },
        { "array growth", "// @statements 100000000\nconst a = []; for (;;) a.push('x'.repeat(1000));", RuleErrorKind.Budget, [RuleBudgetKind.Memory, RuleBudgetKind.Time] },
        { "object growth", "// @statements 100000000\nconst o = {}; for (let i = 0; ; i++) o['k' + i] = [i, i, i];", RuleErrorKind.Budget, [RuleBudgetKind.Memory, RuleBudgetKind.Time] },
        { "deep recursion", "function f(n) { return f(n + 1) + 1; } return f(0);", RuleErrorKind.Budget, [RuleBudgetKind.Recursion] },
        { "recursion through a getter", "const o = { get a() { return this.a; } }; return o.a;", RuleErrorKind.Budget, [RuleBudgetKind.Recursion] },
        { "recursion that catches its own overflow", "// @statements 100000000\nfunction f() { try { return f(); } catch (e) { return f(); } } return f();", RuleErrorKind.Budget, [RuleBudgetKind.Recursion, RuleBudgetKind.Time] },
        { "huge string by repeat", "return 'x'.repeat(2 ** 28).length;", RuleErrorKind.Budget, [RuleBudgetKind.Memory] },
        { "huge string by padStart", "return ''.padStart(2 ** 29, 'ab').length;", RuleErrorKind.Budget, [RuleBudgetKind.Memory] },
        { "huge string by doubling", "let s = 'x'; for (let i = 0; i < 40; i++) s += s; return s.length;", RuleErrorKind.Budget, [RuleBudgetKind.Memory] },
        { "huge string by join", "return new Array(900000).fill('x'.repeat(1000)).join('').length;", RuleErrorKind.Budget, [RuleBudgetKind.Memory] },
        { "huge array", "return new Array(1e9).fill(0).length;", RuleErrorKind.Budget, [RuleBudgetKind.Memory] },
        { "eval", "return eval('1 + 1');", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "new Function", "return new Function('return 1')();", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "Function constructor through a prototype", "return (function () {}).constructor('return this')();", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "prototype tampering", "Object.prototype.isVip = true; return {}.isVip;", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "built-in method replaced", "Array.prototype.includes = function () { return true; }; return [].includes(1);", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "helper library replaced", "dates.daysSince = function () { return 0; }; return 1;", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "new global", "globalThis.leak = 42; return 1;", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "undeclared global in strict mode", "leak2 = 42; return 1;", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "reach .NET through importNamespace", "return importNamespace('System.IO').File.ReadAllText('/etc/passwd');", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "reach .NET through System", "return System.Environment.Exit(1);", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "reach a host through require", "return require('fs').readFileSync('/etc/passwd');", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "reach the host from the input object", "return customer.constructor.constructor('return process')();", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "getter that throws in the returned value", "return { get x() { throw new Error('boom from getter'); } };", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "getter that never ends in the returned value", "return { get x() { while (true) {} } };", RuleErrorKind.Budget, [RuleBudgetKind.Statements] },
        { "proxy whose traps throw", "return new Proxy({}, { ownKeys() { throw new Error('trap'); } });", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "toPrimitive that never ends", "return { [Symbol.toPrimitive]() { for (;;) {} } } + 1;", RuleErrorKind.Budget, [RuleBudgetKind.Statements] },
        { "catching the budget error", "try { while (true) {} } catch (e) { return 'caught'; } finally { return 'finally'; }", RuleErrorKind.Budget, [RuleBudgetKind.Statements] },
        { "deeply nested JSON", "return JSON.parse('['.repeat(100000) + ']'.repeat(100000));", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "catastrophic regular expression", "return /^(a+)+$/.test('a'.repeat(40) + 'b');", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "throwing a non-error", "throw 42;", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
        { "huge result", "return new Array(150000).fill(true);", RuleErrorKind.Budget, [RuleBudgetKind.Output] },
        { "deeply nested result", "let a = []; for (let i = 0; i < 1000; i++) a = [a]; return a;", RuleErrorKind.Budget, [RuleBudgetKind.Output] },
        { "async function that never ends", "return (async () => { while (true) {} })();", RuleErrorKind.Budget, [RuleBudgetKind.Statements] },
        { "generator exhausting memory", "// @statements 100000000\nfunction* g() { let i = 0; while (true) yield 'x'.repeat(100) + i++; } return Array.from(g());", RuleErrorKind.Budget, [RuleBudgetKind.Memory, RuleBudgetKind.Time] },
        { "sort with a comparator that throws", "return [3, 1, 2].sort(() => { throw new Error('no'); });", RuleErrorKind.Runtime, [RuleBudgetKind.None] },
    };

    [Theory]
    [MemberData(nameof(Catalogue))]
    public async Task A_hostile_script_is_stopped_with_a_clear_error(string name, string code, RuleErrorKind kind, RuleBudgetKind[] budgets)
    {
        var script = _engine.Compile(new RuleSource(name, code, "rules/segments/hostile.js"), ["customer"]);
        var result = await _engine.RunAsync(script, [new Dictionary<string, object?> { ["name"] = "Acme" }]);

        Assert.NotNull(result.Error);
        Assert.Equal(kind, result.Error!.Kind);
        Assert.Contains(result.Error.Budget, budgets);
        Assert.Equal("rules/segments/hostile.js", result.Error.Script);
        Assert.False(string.IsNullOrWhiteSpace(result.Error.Message));
        Assert.True(result.Usage.Elapsed < TimeSpan.FromSeconds(10), $"{name} ran {result.Usage.Elapsed}");

        // The engine goes on, and nothing the hostile script tried is visible to the next run.
        var healthy = _engine.Compile(new RuleSource("healthy",
            "return [typeof leak, typeof leak2, ({}).isVip, [].includes(1), typeof dates.daysSince(null), customer.name].join(',');"), ["customer"]);
        var next = await _engine.RunAsync(healthy, [new Dictionary<string, object?> { ["name"] = "Beta" }]);
        Assert.Null(next.Error);
        Assert.Equal("undefined,undefined,,false,object,Beta", next.Value);
    }

    [Fact]
    public async Task The_budget_report_gives_each_budget_used_and_its_limit_including_call_depth()
    {
        async Task<RuleRunResult> Run(string code) =>
            await _engine.RunAsync(_engine.Compile(new RuleSource("depth", code, "rules/segments/depth.js"), ["customer"]), [null]);
        const string Recurse = "function f(n) { return n > 0 ? 1 + f(n - 1) : 0; }\n"; // not a tail call: each level nests

        var five = await Run(Recurse + "return f(5);");
        var ten = await Run(Recurse + "return f(10);");
        var flat = await Run("return 1;");
        Assert.Equal(5, ten.Usage.CallDepth - five.Usage.CallDepth);
        Assert.Equal(1, flat.Usage.CallDepth); // the script's own body
        Assert.Equal(50, five.Usage.Limits!.RecursionDepth); // the fixture's engine-wide limits
        Assert.Equal(50_000, five.Usage.Limits.Statements);
        Assert.Contains("call depth " + five.Usage.CallDepth + " of 50", JsRuleEngine.Describe(five.Usage), StringComparison.Ordinal);

        // A budget error carries the whole report, so the recorded error shows it too.
        var deep = await Run("// @recursion 20\n" + Recurse + "return f(100);");
        Assert.Equal(RuleBudgetKind.Recursion, deep.Error!.Budget);
        Assert.Equal(20, deep.Usage.Limits!.RecursionDepth);
        Assert.Contains("of 20", deep.Error.Message, StringComparison.Ordinal);
        Assert.Matches(@"call depth \d+ of 20", deep.Error.ToString());
        var loop = await Run("// @statements 500\nwhile (true) {}");
        Assert.Matches(@"\d+ of 500 statements, .* KB of \d+ KB memory, call depth 1 of 50", loop.Error!.Message);
    }

    [Fact]
    public void The_catalogue_holds_at_least_twenty_scripts() => Assert.True(Catalogue.Count() >= 20);

    [Fact]
    public async Task Budget_errors_say_where_the_script_was()
    {
        var script = _engine.Compile(new RuleSource("loop", "let a = 0;\nwhile (true) {\n  a++;\n}", "rules/segments/loop.js"), ["customer"]);
        var result = await _engine.RunAsync(script, [null]);
        Assert.Equal(RuleBudgetKind.Statements, result.Error?.Budget);
        Assert.InRange(result.Error!.Line, 2, 3);
    }

    [Fact]
    public async Task Nothing_from_the_host_is_visible_in_the_global_scope()
    {
        var script = _engine.Compile(new RuleSource("globals", "return Object.getOwnPropertyNames(globalThis);"), ["customer"]);
        var result = await _engine.RunAsync(script, [null]);
        var names = Assert.IsType<List<object?>>(result.Value).Cast<string>().ToList();
        foreach (var forbidden in new[] { "importNamespace", "System", "clrHelper", "require", "process", "eval", "fetch", "XMLHttpRequest", "setTimeout" })
        {
            Assert.DoesNotContain(forbidden, names);
        }

        Assert.Contains("dates", names);
        Assert.Contains("log", names);
    }

    [Fact]
    public async Task Runs_of_the_same_script_share_no_state()
    {
        var script = _engine.Compile(new RuleSource("counter", "var seen = typeof seen === 'undefined' ? 0 : seen; let count = 0; count++; seen++; return [count, seen];"), ["customer"]);
        for (var i = 0; i < 5; i++)
        {
            var result = await _engine.RunAsync(script, [null]);
            Assert.Equal(new List<object?> { 1d, 1d }, result.Value);
        }
    }

    [Fact]
    public void Deeply_nested_source_is_refused_before_parsing()
    {
        var code = "return " + new string('(', 100_000) + "1" + new string(')', 100_000) + ";";
        var ex = Assert.Throws<RuleCompileException>(() => _engine.Compile(new RuleSource("nested", code), ["customer"]));
        Assert.Contains("nested", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_oversized_script_is_refused()
    {
        var ex = Assert.Throws<RuleCompileException>(() => _engine.Compile(new RuleSource("big", "return 1;" + new string(' ', 300_000)), ["customer"]));
        Assert.Contains("characters", ex.Message, StringComparison.Ordinal);
    }
}
