using System.Globalization;
using System.Text;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Rules;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
using CrmEngine.Rules.Events;
using CrmEngine.Rules.Scripting;
using CrmEngine.Rules.Segments;

namespace CrmEngine.Rules.Testing;

/// <summary>One customer's dry run.</summary>
public sealed record RuleTestRun(string CustomerId, string CustomerName, RuleRunResult Result, IReadOnlyList<string> Effects);

/// <summary>The dry run of one script: what it would decide or do, and nothing written.</summary>
public sealed record RuleTestReport(string Script, RuleKind Kind, string Hash, IReadOnlyList<RuleTestRun> Runs, RuleError? CompileError)
{
    /// <summary>The user the facts were computed for (<c>--as</c>); null: the machine operator.</summary>
    public string? Reader { get; init; }

    public string ToText()
    {
        var text = new StringBuilder();
        if (CompileError is not null)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"REFUSED {CompileError}");
            return text.ToString();
        }

        text.AppendLine(CultureInfo.InvariantCulture, $"{Kind.ToString().ToLowerInvariant()} {Script} version {Hash} (dry run: nothing was written)");
        if (Reader is not null)
        {
            text.AppendLine(RulesText.AsReader(Reader));
        }
        foreach (var run in Runs)
        {
            text.Append(RulesText.Run($"customer {run.CustomerId} ({run.CustomerName})", run.Result));
            foreach (var effect in run.Effects)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"  would {effect}");
            }
        }

        var failed = Runs.Count(r => r.Result.Error is not null);
        var members = Kind == RuleKind.Segment ? string.Create(CultureInfo.InvariantCulture, $", {Runs.Count(r => r.Result.Value is true)} in the segment") : "";
        text.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{Runs.Count} customer(s), {failed} error(s)") + members);
        return text.ToString();
    }
}

/// <summary>
/// <c>crm rules test &lt;script&gt; --customer &lt;id&gt; | --sample N</c>: runs a script file (in the rules
/// folder or anywhere) against real customers with tracing on, and writes nothing. A segment script
/// gets the customer object; an event rule gets the customer's record as an update at its declared
/// stage (customer rules), or the customer's most recent order/activity (order/activity rules), and
/// its api calls are reported instead of carried out.
/// </summary>
public sealed class RuleTester
{
    private readonly JsRuleEngine _engine;
    private readonly RuleCatalog _catalog;
    private readonly ICrmStore _store;
    private readonly TimeProvider _time;

    public RuleTester(JsRuleEngine engine, RuleCatalog catalog, IStoreProvider stores, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(stores);
        _engine = engine ?? throw new ArgumentNullException(nameof(engine));
        _catalog = catalog ?? throw new ArgumentNullException(nameof(catalog));
        _store = stores.ForActor("system:rules-test");
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Runs <paramref name="scriptPath"/> (a file, or the name of a loaded script) for the given customers or a random sample.</summary>
    /// <param name="access">Who runs it (<c>--as</c>): only customers (and their orders/activities) they may read, without the
    /// fields hidden from them. Null: the machine operator.</param>
    public async Task<RuleTestReport> TestAsync(string scriptPath, IReadOnlyList<string>? customerIds = null, int sample = 0, int? seed = null,
        CancellationToken cancellationToken = default, Admin.FactsAccess? access = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(scriptPath);
        LoadedRule rule;
        try
        {
            rule = Resolve(scriptPath);
        }
        catch (RuleCompileException ex)
        {
            return new RuleTestReport(scriptPath, RuleKind.Segment, "", [], ex.Error);
        }

        var ids = customerIds is { Count: > 0 } ? customerIds : await SampleAsync(Math.Max(1, sample), seed, cancellationToken, access);
        var runs = new List<RuleTestRun>();
        foreach (var id in ids)
        {
            runs.Add(await RunOneAsync(rule, id, cancellationToken, access));
        }

        return new RuleTestReport(rule.Script.Path ?? rule.Name, rule.Kind, rule.Hash, runs, null) { Reader = access?.User };
    }

    private LoadedRule Resolve(string scriptPath)
    {
        if (File.Exists(scriptPath))
        {
            var code = File.ReadAllText(scriptPath);
            var full = Path.GetFullPath(scriptPath);
            var isEvent = full.Contains($"{Path.DirectorySeparatorChar}events{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                || ScriptHeader.Parse(code).ContainsKey("entity");
            return _catalog.Load(isEvent ? RuleKind.Event : RuleKind.Segment, Path.GetFileNameWithoutExtension(full), code, scriptPath);
        }

        var name = Path.GetFileNameWithoutExtension(scriptPath);
        return _catalog.Find(RuleKind.Segment, name) ?? _catalog.Find(RuleKind.Event, name)
            ?? throw new RuleCompileException(new RuleError(scriptPath, 0, 0, RuleErrorKind.Syntax, RuleBudgetKind.None,
                "no such file, and no loaded segment or event rule of that name"));
    }

    private async Task<IReadOnlyList<string>> SampleAsync(int n, int? seed, CancellationToken ct, Admin.FactsAccess? access)
    {
        // Reservoir sample over every customer id: each customer is equally likely.
        var random = seed is { } s ? new Random(s) : Random.Shared;
        var chosen = new List<string>(n);
        long seen = 0;
        string? after = null;
        while (true)
        {
            var page = await _store.Customers.ListAsync(1000, after, ct);
            foreach (var c in page.Where(c => access is null || access.MayRead(c)))
            {
                seen++;
                if (chosen.Count < n)
                {
                    chosen.Add(c.Id);
                }
                else if (random.NextInt64(seen) is var j && j < n)
                {
                    chosen[(int)j] = c.Id;
                }
            }

            if (page.Count < 1000)
            {
                return chosen.Order(StringComparer.Ordinal).ToList();
            }

            after = page[^1].Id;
        }
    }

    private async Task<RuleTestRun> RunOneAsync(LoadedRule rule, string customerId, CancellationToken ct, Admin.FactsAccess? access)
    {
        var now = _time.GetUtcNow();
        var customer = await _store.Customers.GetAsync(customerId, ct);
        if (customer is null || (access is not null && !access.MayRead(customer)))
        {
            return new RuleTestRun(customerId, "", Failed(rule, $"there is no customer '{customerId}'"), []);
        }

        if (rule.Kind == RuleKind.Segment)
        {
            var facts = await CustomerFacts.LoadAsAsync(_store, customer, now, access, ct);
            var result = SegmentService.CheckResult(await _engine.RunAsync(rule.Script, [facts], new RuleRunOptions { Now = now, Trace = true }, ct));
            return new RuleTestRun(customerId, customer.Name, result, []);
        }

        var binding = rule.Binding!;
        object? entity = binding.Entity switch
        {
            EntityNames.Customer => customer,
            EntityNames.Order => (await _store.Orders.FindAsync(IndexedField.CustomerId, customerId, 1000, null, ct))
                .Where(o => access is null || access.MayRead(o)).OrderByDescending(o => o.OrderedAt).FirstOrDefault(),
            _ => (await _store.Activities.FindAsync(IndexedField.CustomerId, customerId, 1000, null, ct))
                .Where(a => access is null || access.MayRead(a)).OrderByDescending(a => a.CreatedAt).FirstOrDefault(),
        };
        if (entity is null)
        {
            return new RuleTestRun(customerId, customer.Name, Failed(rule, $"customer '{customerId}' has no {binding.Entity} to test the rule with"), []);
        }

        // The record and its "before" copy without the fields hidden from the reader (customer, order or activity alike).
        Dictionary<string, object?> Plain() => access?.MaskRecord(binding.Entity, RecordMapping.ToPlain(entity)) ?? RecordMapping.ToPlain(entity)!;
        var record = Plain();

        var effects = new List<string>();
        var functions = new Dictionary<string, RuleFunction>(StringComparer.Ordinal)
        {
            ["reject"] = a => { effects.Add($"reject: {string.Join(": ", a.Select(x => x?.ToString()))}"); return null; },
            ["addTag"] = a => { effects.Add($"add tag '{a.FirstOrDefault()}' to customer {customerId}"); return null; },
            ["removeTag"] = a => { effects.Add($"remove tag '{a.FirstOrDefault()}' from customer {customerId}"); return null; },
            ["setCustomerFields"] = a => { effects.Add($"set customer fields {RulesText.Value(a.FirstOrDefault())} on customer {customerId}"); return null; },
            ["createActivity"] = a => { effects.Add($"create activity {RulesText.Value(a.FirstOrDefault())} for customer {customerId}"); return null; },
        };
        var eventInfo = new Dictionary<string, object?>
        {
            ["entity"] = binding.Entity,
            ["id"] = record["id"],
            ["operation"] = "update",
            ["stage"] = binding.Stage.ToString().ToLowerInvariant(),
            ["actor"] = "system:rules-test",
            ["depth"] = 0,
            ["before"] = Plain(),
            ["customer"] = rule.Script.Header.ContainsKey("facts") ? await CustomerFacts.LoadAsAsync(_store, customer, now, access, ct) : null,
        };
        var run = await _engine.RunAsync(rule.Script, [record, eventInfo, null], new RuleRunOptions
        {
            Now = now,
            Trace = true,
            ReturnArguments = true,
            Functions = functions,
        }, ct);
        if (run.Error is null && run.Arguments.Count > 0 && run.Arguments[0] is IReadOnlyDictionary<string, object?> after)
        {
            try
            {
                var copy = entity switch
                {
                    Customer c => (object)CloneCustomer(c),
                    _ => entity,
                };
                foreach (var field in RecordMapping.CopyBack(copy, record, after))
                {
                    effects.Add($"set {field} = {RulesText.Value(after.GetValueOrDefault(field))}");
                }
            }
            catch (ArgumentException ex)
            {
                run = run with { Error = new RuleError(rule.Script.Path ?? rule.Name, 0, 0, RuleErrorKind.Result, RuleBudgetKind.None, ex.Message) };
            }
        }

        return new RuleTestRun(customerId, customer.Name, run, effects);
    }

    private static Customer CloneCustomer(Customer c) => new()
    {
        Id = c.Id,
        Name = c.Name,
        Tags = [.. c.Tags],
        Custom = new Dictionary<string, CustomValue>(c.Custom, StringComparer.Ordinal),
        Profile = new CustomerProfile { Region = c.Profile.Region },
    };

    private static RuleRunResult Failed(LoadedRule rule, string message) => new()
    {
        ScriptName = rule.Name,
        ScriptHash = rule.Hash,
        Error = new RuleError(rule.Script.Path ?? rule.Name, 0, 0, RuleErrorKind.Result, RuleBudgetKind.None, message),
        Usage = new RuleUsage(TimeSpan.Zero, 0, 0),
    };
}

/// <summary>Plain-text rendering shared by the command-line verbs.</summary>
public static class RulesText
{
    public static string Run(string title, RuleRunResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var text = new StringBuilder();
        text.AppendLine(title + ": " + (result.Error is null ? "returned " + Value(result.Value) : "ERROR " + result.Error +
            (result.Error.Budget != RuleBudgetKind.None ? " [budget: " + result.Error.Budget.ToString().ToLowerInvariant() + "]" : "")));
        foreach (var read in result.Reads)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  read {read.Path} = {Value(read.Value)}");
        }

        foreach (var line in result.Log)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  log: {line}");
        }

        text.AppendLine("  used " + JsRuleEngine.Describe(result.Usage));
        return text.ToString();
    }

    /// <summary>The line that says whose view the facts are (<c>--as</c>).</summary>
    public static string AsReader(string user) =>
        $"facts as user '{user}' sees them: orders and activities they may not read are left out of lists and figures (counts, sums, dates), fields hidden from them are absent";

    public static string Explain(SegmentExplanation e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var text = new StringBuilder();
        if (e.MembershipWithheld)
        {
            text.AppendLine("customer " + e.CustomerId + ": membership of segment " + e.Segment + " not shown: the segment's script reads what user '" + e.Reader +
                "' may not see (a hidden field, or orders/activities of this customer they may not read)");
            text.AppendLine(AsReader(e.Reader!));
            text.Append(Run("run of script version " + e.DecidedByHash + " on the customer's data as they see it", e.Run));
            return text.ToString();
        }

        if (e.Reader is not null)
        {
            text.AppendLine(AsReader(e.Reader));
        }

        text.AppendLine("customer " + e.CustomerId + " is " + (e.IsMember ? "IN" : "NOT in") + " segment " + e.Segment + ", decided by script version " + e.DecidedByHash +
            (e.DecidedAt is { } at ? " at " + at.ToString("O", CultureInfo.InvariantCulture) : "") +
            (e.DecidedByCurrentVersion ? " (the current version)" : " (an earlier version; the current one has not re-evaluated this customer yet)"));
        text.Append(Run("re-run of that version on the customer's data now", e.Run));
        if (e.Run.Error is null && e.Run.Value is bool now && now != e.IsMember)
        {
            text.AppendLine("  note: the data changed since the decision; the change feed will update the membership shortly");
        }

        return text.ToString();
    }

    public static string Value(object? value) => value switch
    {
        null => "null",
        string s => "\"" + s + "\"",
        bool b => b ? "true" : "false",
        double d => d.ToString("0.######", CultureInfo.InvariantCulture),
        DateTimeOffset d => d.ToString("yyyy-MM-dd'T'HH:mm:ssZ", CultureInfo.InvariantCulture),
        IReadOnlyDictionary<string, object?> map => "{" + string.Join(", ", map.Select(p => p.Key + ": " + Value(p.Value))) + "}",
        IEnumerable<object?> list => "[" + string.Join(", ", list.Take(20).Select(Value)) + (list.Count() > 20 ? ", …" : "") + "]",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };
}
