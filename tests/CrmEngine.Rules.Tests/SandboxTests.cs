using CrmEngine.Abstractions.Rules;
using CrmEngine.Rules;
using CrmEngine.Rules.Scripting;

namespace CrmEngine.Rules.Tests;

public sealed class EngineFixture : IDisposable
{
    public JsRuleEngine Engine { get; } = new(new RulesOptions
    {
        Workers = 2,
        Timeout = TimeSpan.FromSeconds(2),
        MaxStatements = 50_000,
        MaxMemoryBytes = 8L * 1024 * 1024,
        MaxRecursion = 50,
    });

    public void Dispose() => Engine.Dispose();
}

public class SandboxTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly JsRuleEngine _engine = fixture.Engine;

    private Task<RuleRunResult> Run(string code, object? input = null, RuleRunOptions? options = null, string name = "test.js") =>
        _engine.RunAsync(_engine.Compile(new RuleSource(name, code), ["customer"]), [input ?? new Dictionary<string, object?>()], options);

    [Fact]
    public async Task A_script_sees_the_input_as_a_plain_object_and_returns_a_value()
    {
        var result = await Run("return customer.name + ':' + customer.orders.count;",
            new Dictionary<string, object?> { ["name"] = "Acme", ["orders"] = new Dictionary<string, object?> { ["count"] = 3 } });
        Assert.Null(result.Error);
        Assert.Equal("Acme:3", result.Value);
        Assert.Equal(JsRuleEngine.HashOf("return customer.name + ':' + customer.orders.count;"), result.ScriptHash);
        Assert.True(result.Usage.Statements > 0);
    }

    [Fact]
    public void A_syntax_error_is_refused_with_file_line_and_column()
    {
        var ex = Assert.Throws<RuleCompileException>(() => _engine.Compile(new RuleSource("x", "// @timeout 50ms\nlet a = 1;\nreturn a +;\n", "rules/segments/x.js"), ["customer"]));
        Assert.Equal("rules/segments/x.js", ex.Error.Script);
        Assert.Equal(3, ex.Error.Line);
        Assert.Equal(RuleErrorKind.Syntax, ex.Error.Kind);
        Assert.StartsWith("rules/segments/x.js:3:", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_syntax_error_on_line_one_has_the_column_of_the_users_text()
    {
        var ex = Assert.Throws<RuleCompileException>(() => _engine.Compile(new RuleSource("x", "return 1 +;"), ["customer"]));
        Assert.Equal(1, ex.Error.Line);
        Assert.Equal(11, ex.Error.Column);
    }

    [Fact]
    public void Breaking_out_of_the_function_wrapper_is_refused()
    {
        var ex = Assert.Throws<RuleCompileException>(() => _engine.Compile(new RuleSource("x", "return 1; }); (function () {"), ["customer"]));
        Assert.Contains("never opened", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_header_budget_is_refused_naming_the_line()
    {
        var ex = Assert.Throws<RuleCompileException>(() => _engine.Compile(new RuleSource("x", "// @segment x\n// @timeout forever\nreturn true;"), ["customer"]));
        Assert.Equal(2, ex.Error.Line);
        Assert.Contains("@timeout", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_runtime_error_names_line_and_column()
    {
        var result = await Run("let a = 1;\nlet b = customer.missing.field;\nreturn b;");
        Assert.NotNull(result.Error);
        Assert.Equal(RuleErrorKind.Runtime, result.Error!.Kind);
        Assert.Equal(2, result.Error.Line);
        Assert.Contains("TypeError", result.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_header_budget_applies_per_script()
    {
        var code = "// @statements 200\nlet n = 0; for (let i = 0; i < 1000; i++) { n += i; } return n;";
        var script = _engine.Compile(new RuleSource("tight", code), ["customer"]);
        Assert.Equal(200, script.Budget.Statements);
        var result = await _engine.RunAsync(script, [null]);
        Assert.Equal(RuleBudgetKind.Statements, result.Error?.Budget);

        var roomy = await Run("let n = 0; for (let i = 0; i < 1000; i++) { n += i; } return n;");
        Assert.Equal(499500d, roomy.Value);
    }

    [Fact]
    public async Task Log_lines_are_captured_and_capped()
    {
        var result = await Run("log('hello', {a: 1}, [1, 2]); for (let i = 0; i < 500; i++) log(i); return true;");
        Assert.Equal("hello {\"a\":1} [1,2]", result.Log[0]);
        Assert.Equal(101, result.Log.Count);
        Assert.Contains("dropped", result.Log[^1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Trace_records_the_fields_read_with_their_values()
    {
        var input = new Dictionary<string, object?>
        {
            ["name"] = "Acme",
            ["spent"] = new Dictionary<string, object?> { ["total"] = 1200.5, ["average"] = 100 },
            ["tags"] = new List<object?> { "vip" },
        };
        var result = await Run("return customer.spent.total > 1000 && customer.tags.includes('vip');", input, new RuleRunOptions { Trace = true });
        Assert.Equal(true, result.Value);
        Assert.Equal(["customer.spent.total", "customer.tags"], result.Reads.Select(r => r.Path));
        Assert.Equal(1200.5, result.Reads[0].Value);
    }

    [Fact]
    public async Task Arguments_can_be_returned_after_the_run()
    {
        var script = _engine.Compile(new RuleSource("pre", "record.owner = 'rep-' + record.region; return null;"), ["record"]);
        var result = await _engine.RunAsync(script, [new Dictionary<string, object?> { ["region"] = "north" }], new RuleRunOptions { ReturnArguments = true });
        var after = Assert.IsType<Dictionary<string, object?>>(result.Arguments[0]);
        Assert.Equal("rep-north", after["owner"]);
    }

    [Fact]
    public async Task Host_functions_are_offered_through_the_api_parameter()
    {
        var calls = new List<string>();
        var script = _engine.Compile(new RuleSource("post", "api.addTag('vip'); return 1;"), ["record", "api"]);
        var result = await _engine.RunAsync(script, [new Dictionary<string, object?>(), null], new RuleRunOptions
        {
            Functions = new Dictionary<string, RuleFunction> { ["addTag"] = args => { calls.Add((string)args[0]!); return null; } },
        });
        Assert.Null(result.Error);
        Assert.Equal(["vip"], calls);
    }

    [Fact]
    public async Task Helpers_compute_dates_money_and_strings_against_the_given_now()
    {
        var now = new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
        var input = new Dictionary<string, object?> { ["last"] = now.AddDays(-10), ["amounts"] = new List<object?> { 10.005, 20, 30 } };
        var result = await Run(
            "return [dates.daysSince(customer.last), dates.withinDays(customer.last, 7), money.sum(customer.amounts), money.round(2.345, 2), " +
            "strings.contains('Hello World', 'WORLD'), dates.format(dates.daysAgo(1)), money.avg([1,2,3]), strings.oneOf('B', ['a','b'])];",
            input, new RuleRunOptions { Now = now });
        Assert.Null(result.Error);
        var list = Assert.IsType<List<object?>>(result.Value);
        Assert.Equal(10d, list[0]);
        Assert.Equal(false, list[1]);
        Assert.Equal(60.005, (double)list[2]!, 6);
        Assert.Equal(2.35, (double)list[3]!, 6);
        Assert.Equal(true, list[4]);
        Assert.Equal("2026-02-28", list[5]);
        Assert.Equal(2d, list[6]);
        Assert.Equal(true, list[7]);
    }

    [Fact]
    public async Task The_same_engine_serves_many_runs_concurrently()
    {
        var script = _engine.Compile(new RuleSource("n", "return customer.n * 2;"), ["customer"]);
        var inputs = Enumerable.Range(0, 500).Select(i => (IReadOnlyList<object?>)[new Dictionary<string, object?> { ["n"] = i }]).ToList();
        var results = await _engine.RunManyAsync(script, inputs);
        Assert.Equal(Enumerable.Range(0, 500).Select(i => (object?)(i * 2d)), results.Select(r => r.Value));
    }

    [Fact]
    public async Task Date_now_answers_the_evaluation_time()
    {
        var now = new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero);
        var result = await Run("return [Date.now(), dates.now().getTime()];", null, new RuleRunOptions { Now = now });
        Assert.Equal(new List<object?> { (double)now.ToUnixTimeMilliseconds(), (double)now.ToUnixTimeMilliseconds() }, result.Value);
    }
}
