using System.Globalization;
using System.Text;
using CrmEngine.Core;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using CrmEngine.Rules.Scripting;
using CrmEngine.Rules.Segments;
using CrmEngine.Rules.Testing;

namespace CrmEngine.Rules.Admin;

/// <summary>
/// What the command line (<c>crm rules test</c>, <c>crm segments list|members|explain|rebuild</c>) and the
/// control channel need, as plain text. Works on the running service's objects, or — through
/// <see cref="OpenOffline"/> — directly on the database while the service is stopped.
/// </summary>
public sealed class RulesAdministration : IDisposable
{
    private readonly RuleTester _tester;
    private readonly SegmentService _segments;
    private readonly IDisposable? _owned;

    public RulesAdministration(RuleTester tester, SegmentService segments)
    {
        _tester = tester ?? throw new ArgumentNullException(nameof(tester));
        _segments = segments ?? throw new ArgumentNullException(nameof(segments));
    }

    private RulesAdministration(RuleTester tester, SegmentService segments, IDisposable owned, IStoreProvider stores) : this(tester, segments)
    {
        _owned = owned;
        Stores = stores;
    }

    /// <summary>The stopped database's stores (offline only; null in the service), for reading the access model there.</summary>
    public IStoreProvider? Stores { get; }

    /// <summary>The rule services over a stopped database (the caller has checked nobody else holds it).</summary>
    public static RulesAdministration OpenOffline(StoreOptions store, RulesOptions rules, string contentRoot, PipelineOptions? pipeline = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(rules);
        var parts = new Offline();
        try
        {
            var time = TimeProvider.System;
            var resolved = new StoreOptions
            {
                DataDirectory = Path.GetDirectoryName(CrmDatabase.ResolveFilePath(store, contentRoot))!,
                FileName = store.FileName,
            };
            parts.Database = new CrmDatabase(resolved, time);
            var pipe = new WritePipeline(parts.Database, new WriteHandlerRegistry(), pipeline ?? new PipelineOptions(), () => []);
            var provider = new StoreProvider(pipe);
            parts.Engine = new JsRuleEngine(rules, time);
            parts.Catalog = new RuleCatalog(parts.Engine, Path.Combine(contentRoot, rules.Directory));
            parts.Catalog.Reload();
            parts.Segments = new SegmentService(parts.Engine, parts.Catalog, provider, Microsoft.Extensions.Options.Options.Create(rules), time);
            return new RulesAdministration(new RuleTester(parts.Engine, parts.Catalog, provider, time), parts.Segments, parts, provider);
        }
        catch
        {
            parts.Dispose();
            throw;
        }
    }

    private sealed class Offline : IDisposable
    {
        public CrmDatabase? Database;
        public JsRuleEngine? Engine;
        public RuleCatalog? Catalog;
        public SegmentService? Segments;

        public void Dispose()
        {
            Segments?.Dispose();
            Catalog?.Dispose();
            Engine?.Dispose();
            Database?.Dispose();
        }
    }

    /// <summary><c>crm rules test &lt;script&gt; [--customer id]... [--sample N]</c>. Exit code 0 when no run failed.</summary>
    public async Task<(string Text, bool Ok)> TestAsync(string script, IReadOnlyList<string>? customers, int sample, CancellationToken cancellationToken = default,
        FactsAccess? access = null)
    {
        var report = await _tester.TestAsync(script, customers, sample, null, cancellationToken, access);
        return (report.ToText(), report.CompileError is null && report.Runs.All(r => r.Result.Error is null));
    }

    /// <summary><c>crm segments list</c>: name, version, status, members, last rebuild, last error; refused files too.</summary>
    public async Task<string> ListAsync(CancellationToken cancellationToken = default)
    {
        var text = new StringBuilder();
        var list = await _segments.ListAsync(cancellationToken);
        if (list.Count == 0)
        {
            return "no segments (add scripts to rules/segments/)" + Environment.NewLine;
        }

        foreach (var s in list)
        {
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{s.Name,-32} {s.ScriptHash ?? "-",-16} {s.Status,-7} {s.Members,9} members  rebuilt {(s.LastRebuildAt is { } r ? r.ToString("u", CultureInfo.InvariantCulture) : "never")} ({s.Rebuilds} rebuilds){(s.TimeDependent ? "  time-dependent" : "")}"));
            if (s.RefusedError is not null)
            {
                text.AppendLine("    refused (previous version active): " + s.RefusedError);
            }

            if (s.LastError is not null)
            {
                text.AppendLine("    last error: " + s.LastError);
            }
        }

        return text.ToString();
    }

    /// <summary><c>crm segments members &lt;segment&gt; [--limit N] [--after id]</c>.</summary>
    public async Task<string> MembersAsync(string segment, int limit = 100, string? after = null, CancellationToken cancellationToken = default)
    {
        var members = await _segments.MembersAsync(segment, limit, after, cancellationToken);
        var text = new StringBuilder();
        foreach (var m in members)
        {
            text.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{m.CustomerId}  decided {m.DecidedAt:u} by {m.ScriptHash}"));
        }

        return text.ToString();
    }

    /// <summary><c>crm segments explain &lt;segment&gt; &lt;customer id&gt;</c>.</summary>
    public async Task<string> ExplainAsync(string segment, string customerId, CancellationToken cancellationToken = default, FactsAccess? access = null) =>
        RulesText.Explain(await _segments.ExplainAsync(segment, customerId, cancellationToken, access));

    /// <summary><c>crm segments rebuild [segment]</c>: one segment, or all.</summary>
    public async Task<string> RebuildAsync(string? segment, CancellationToken cancellationToken = default)
    {
        var reports = segment is null ? await _segments.RebuildAllAsync(cancellationToken) : [await _segments.RebuildAsync(segment, cancellationToken)];
        var text = new StringBuilder();
        foreach (var r in reports)
        {
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Segment} (version {r.ScriptHash}): {r.Customers} customers, {r.Members} members (+{r.Added} -{r.Removed}), {r.Failed} failed, {r.Elapsed.TotalSeconds:0.00} s"));
        }

        return text.ToString();
    }

    public void Dispose() => _owned?.Dispose();
}
