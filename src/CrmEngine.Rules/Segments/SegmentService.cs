using System.Collections.Concurrent;
using System.Text.Json;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Rules;
using CrmEngine.Abstractions.Scheduling;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.Rules.Scripting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmEngine.Rules.Segments;

/// <summary>One segment as listed: its script, state and member count.</summary>
public sealed record SegmentInfo(string Name, string? ScriptHash, SegmentStatus Status, long Members, string? LastError,
    DateTimeOffset? LastRebuildAt, string? RefusedError)
{
    /// <summary>Refreshed on the time-refresh schedule because its answer can change with time alone.</summary>
    public bool TimeDependent { get; init; }

    /// <summary>Full rebuilds run so far.</summary>
    public long Rebuilds { get; init; }
}

/// <summary>Why a customer is (or is not) in a segment.</summary>
public sealed record SegmentExplanation(
    string Segment,
    string CustomerId,
    bool IsMember,
    string DecidedByHash,
    DateTimeOffset? DecidedAt,
    bool DecidedByCurrentVersion,
    RuleRunResult Run)
{
    /// <summary>The user the facts were computed for (<c>--as</c>); null: the machine operator.</summary>
    public string? Reader { get; init; }

    /// <summary>The stored decision is not shown: the script reads what <see cref="Reader"/> may not see.</summary>
    public bool MembershipWithheld { get; init; }
}

public sealed record RebuildReport(string Segment, string ScriptHash, long Customers, long Members, long Added, long Removed, long Failed, TimeSpan Elapsed);

/// <summary>
/// Stored segment membership, kept current from the change feed: a change to a customer, one of
/// its orders or one of its activities re-evaluates that customer against every active segment.
/// A full rebuild evaluates every customer with the same code path, so both always agree.
/// The change-feed position is stored (<c>rules_cursors</c>) and survives restarts.
/// </summary>
public sealed class SegmentService : BackgroundService
{
    public const string Owner = "rules";
    private const string CursorId = "segments";
    private const int Page = 1000;

    private readonly JsRuleEngine _engine;
    private readonly RuleCatalog _catalog;
    private readonly ICrmStore _store;
    private readonly RulesOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger? _logger;
    private readonly IScheduler? _scheduler;
    private readonly SemaphoreSlim _work = new(1, 1);
    private readonly SemaphoreSlim _wake = new(0);
    private readonly ConcurrentQueue<string> _rebuilds = new();
    private readonly ConcurrentDictionary<string, Health> _health = new(StringComparer.Ordinal);

    public SegmentService(JsRuleEngine engine, RuleCatalog catalog, IStoreProvider stores, IOptions<RulesOptions> options,
        TimeProvider? timeProvider = null, ILogger<SegmentService>? logger = null, IScheduler? scheduler = null)
    {
        _scheduler = scheduler;
        ArgumentNullException.ThrowIfNull(stores);
        _engine = engine ?? throw new ArgumentNullException(nameof(engine));
        _catalog = catalog ?? throw new ArgumentNullException(nameof(catalog));
        _options = options?.Value ?? throw new ArgumentNullException(nameof(options));
        _time = timeProvider ?? TimeProvider.System;
        _logger = logger;
        _store = stores.ForActor("system:rules", Owner);
        _catalog.Changed += OnScriptChanged;
    }

    private IEntitySet<SegmentMember> Members => _store.Collection<SegmentMember>("segment_members");
    private IEntitySet<SegmentState> States => _store.Collection<SegmentState>("segment_states");
    private IEntitySet<RuleVersion> Versions => _store.Collection<RuleVersion>("versions");
    private IEntitySet<RulesCursor> Cursors => _store.Collection<RulesCursor>("cursors");

    private sealed class Health
    {
        public int Failures;
        public RuleError? LastError;
        public bool Dirty;
    }

    // ------------------------------------------------------------------ evaluation

    /// <summary>Runs a segment for one customer as it is now; writes nothing.</summary>
    public async Task<RuleRunResult?> EvaluateAsync(string segment, string customerId, bool trace = false, CancellationToken cancellationToken = default)
    {
        var rule = _catalog.Find(RuleKind.Segment, segment) ?? throw new ArgumentException($"There is no segment '{segment}'.", nameof(segment));
        var asOf = _time.GetUtcNow();
        var facts = await CustomerFacts.LoadAsync(_store, customerId, asOf, cancellationToken);
        return facts is null ? null : await RunAsync(rule.Script, facts, asOf, trace, cancellationToken);
    }

    private async Task<RuleRunResult> RunAsync(IRuleScript script, Dictionary<string, object?> facts, DateTimeOffset asOf, bool trace, CancellationToken ct) =>
        CheckResult(await _engine.RunAsync(script, [facts], new RuleRunOptions { Now = asOf, Trace = trace }, ct));

    /// <summary>A segment must answer true or false; anything else is an error of the script.</summary>
    internal static RuleRunResult CheckResult(RuleRunResult result) =>
        result.Error is null && result.Value is not bool
            ? result with
            {
                Value = null,
                Error = new RuleError(result.ScriptName, 0, 0, RuleErrorKind.Result, RuleBudgetKind.None,
                    $"a segment script must return true or false, not {Describe(result.Value)}"),
            }
            : result;

    private static string Describe(object? value) => value switch
    {
        null => "null/undefined (is a return statement missing?)",
        string s => $"the text \"{s}\"",
        double d => $"the number {d}",
        _ => value.GetType().Name,
    };

    // ------------------------------------------------------------------ full rebuild

    public async Task<IReadOnlyList<RebuildReport>> RebuildAllAsync(CancellationToken cancellationToken = default)
    {
        var reports = new List<RebuildReport>();
        foreach (var rule in _catalog.Segments)
        {
            reports.Add(await RebuildAsync(rule.Name, cancellationToken));
        }

        return reports;
    }

    /// <summary>Evaluates every customer against the segment and stores the differences.</summary>
    public async Task<RebuildReport> RebuildAsync(string segment, CancellationToken cancellationToken = default)
    {
        var rule = _catalog.Find(RuleKind.Segment, segment) ?? throw new ArgumentException($"There is no segment '{segment}'.", nameof(segment));
        await _work.WaitAsync(cancellationToken);
        try
        {
            return await RebuildLockedAsync(rule, cancellationToken);
        }
        finally
        {
            _work.Release();
        }
    }

    private async Task<RebuildReport> RebuildLockedAsync(LoadedRule rule, CancellationToken ct)
    {
        var started = _time.GetTimestamp();
        // Changes after this position are (re)read from the change feed by whoever starts from it.
        var fromSequence = await _store.Changes.LastSequenceAsync(ct);
        await RememberVersionAsync(rule, ct);
        var health = _health.GetOrAdd(rule.Name, _ => new Health());
        health.Failures = 0;
        health.LastError = null;
        health.Dirty = true;
        var existing = await MemberHashesAsync(rule.Name, ct);
        var unseen = new HashSet<string>(existing.Keys, StringComparer.Ordinal);
        long customers = 0, added = 0, removed = 0, failed = 0;
        var asOf = _time.GetUtcNow();
        var lastError = default(RuleError);
        // One scan of the orders (and activities) sums every customer's figures; the customers are then read a
        // page at a time, the next page while the script runs on this one. Records written during the rebuild
        // come through the change feed afterwards.
        var fields = FieldsOf(rule);
        var orders = CustomerFacts.NeedsOrders(fields) ? await OrderFiguresAsync(asOf, CustomerFacts.ListsOrders(fields), ct) : null;
        var activities = CustomerFacts.NeedsActivities(fields) ? await ActivityFiguresAsync(ct) : null;
        var options = new RuleRunOptions { Now = asOf };
        var next = ReadPageAsync(null, ct);
        while (true)
        {
            var page = await next;
            if (page.Count == 0)
            {
                break;
            }

            next = page.Count < Page ? Task.FromResult<IReadOnlyList<Customer>>([]) : ReadPageAsync(page[^1].Id, ct);
            var facts = new IReadOnlyList<object?>[page.Count];
            for (var i = 0; i < page.Count; i++)
            {
                var c = page[i];
                facts[i] = [CustomerFacts.Build(c, orders?.GetValueOrDefault(c.Id), activities?.GetValueOrDefault(c.Id), asOf, fields)];
            }

            var results = await _engine.RunManyAsync(rule.Script, facts, options, ct);
            var writes = new List<BulkWrite<SegmentMember>>();
            var deletes = new List<string>();
            for (var i = 0; i < page.Count; i++)
            {
                customers++;
                var id = page[i].Id;
                unseen.Remove(id);
                var result = CheckResult(results[i]);
                if (result.Error is not null)
                {
                    failed++;
                    lastError = result.Error;
                    continue; // keep whatever membership the customer had
                }

                var isIn = (bool)result.Value!;
                var stored = existing.GetValueOrDefault(id);
                if (isIn && stored is null)
                {
                    writes.Add(new BulkWrite<SegmentMember>(BulkOperation.Create, NewMember(rule, id, asOf)));
                    existing[id] = rule.Hash;
                    added++;
                }
                else if (isIn && stored != rule.Hash)
                {
                    deletes.Add(id); // decided by another version: stored again with this one
                    writes.Add(new BulkWrite<SegmentMember>(BulkOperation.Create, NewMember(rule, id, asOf)));
                    existing[id] = rule.Hash;
                }
                else if (!isIn && stored is not null)
                {
                    deletes.Add(id);
                    existing.Remove(id);
                    removed++;
                }
            }

            await StoreAsync(rule.Name, deletes, writes, ct);
        }

        var gone = unseen.ToList();
        foreach (var id in gone)
        {
            existing.Remove(id);
        }

        removed += gone.Count;
        await StoreAsync(rule.Name, gone, [], ct);
        var allFailed = customers > 0 && failed == customers;
        health.Failures = allFailed ? Math.Max(_options.SegmentFailureThreshold, (int)Math.Min(int.MaxValue, failed)) : 0;
        health.LastError = lastError;
        await SaveStateAsync(rule, health, existing.Count, rebuilt: true, ct, fromSequence);
        var report = new RebuildReport(rule.Name, rule.Hash, customers, existing.Count, added, removed, failed, _time.GetElapsedTime(started));
        _logger?.LogInformation("Segment '{Segment}' rebuilt with version {Hash}: {Customers} customers, {Members} members (+{Added} -{Removed}), {Failed} failed",
            rule.Name, rule.Hash, customers, existing.Count, added, removed, failed);
        return report;
    }

    /// <summary>The next page of customers, read on the thread pool so that it overlaps the script runs of the page before.</summary>
    private Task<IReadOnlyList<Customer>> ReadPageAsync(string? after, CancellationToken ct) =>
        Task.Run(() => _store.Customers.ListAsync(Page, after, ct), ct);

    /// <summary>Membership changes of one page: deletes first (queued together, so they share the writer's group commit), then the creates in one batch.</summary>
    private async Task StoreAsync(string segment, IReadOnlyList<string> deletes, IReadOnlyList<BulkWrite<SegmentMember>> creates, CancellationToken ct)
    {
        for (var i = 0; i < deletes.Count; i += 256)
        {
            await Task.WhenAll(deletes.Skip(i).Take(256).Select(id => Members.DeleteAsync(SegmentMember.IdOf(segment, id), null, ct)));
        }

        if (creates.Count > 0)
        {
            foreach (var r in await Members.WriteManyAsync(creates, ct))
            {
                if (r.Error is not null)
                {
                    throw new InvalidOperationException($"Segment '{segment}': storing member {creates[r.Index].Entity.CustomerId} failed: {r.Error.Message}", r.Error);
                }
            }
        }
    }

    private async Task<Dictionary<string, OrderFigures>> OrderFiguresAsync(DateTimeOffset asOf, bool keepOrders, CancellationToken ct)
    {
        var figures = new Dictionary<string, OrderFigures>(StringComparer.Ordinal);
        await ScanAsync(_store.Orders, o =>
        {
            if (!figures.TryGetValue(o.CustomerId, out var f))
            {
                figures[o.CustomerId] = f = new OrderFigures(asOf, keepOrders);
            }

            f.Add(o);
        }, ct);
        return figures;
    }

    private async Task<Dictionary<string, ActivityFigures>> ActivityFiguresAsync(CancellationToken ct)
    {
        var figures = new Dictionary<string, ActivityFigures>(StringComparer.Ordinal);
        await ScanAsync(_store.Activities, a =>
        {
            if (!figures.TryGetValue(a.CustomerId, out var f))
            {
                figures[a.CustomerId] = f = new ActivityFigures();
            }

            f.Add(a);
        }, ct);
        return figures;
    }

    /// <summary>Every record of a collection, a page at a time (the next page is read while this one is summed).</summary>
    private static async Task ScanAsync<T>(IEntitySet<T> set, Action<T> each, CancellationToken ct) where T : class, IEntity
    {
        const int Size = 5000;
        var next = Task.Run(() => set.ListAsync(Size, null, ct), ct);
        while (true)
        {
            var page = await next;
            next = page.Count < Size ? Task.FromResult<IReadOnlyList<T>>([]) : Task.Run(() => set.ListAsync(Size, page[^1].Id, ct), ct);
            foreach (var item in page)
            {
                each(item);
            }

            if (page.Count < Size)
            {
                return;
            }
        }
    }

    private static SegmentMember NewMember(LoadedRule rule, string customerId, DateTimeOffset at) => new()
    {
        Id = SegmentMember.IdOf(rule.Name, customerId),
        Segment = rule.Name,
        CustomerId = customerId,
        ScriptHash = rule.Hash,
        DecidedAt = at,
    };

    /// <summary>Customer id to the hash of the script version that put it in.</summary>
    private async Task<Dictionary<string, string>> MemberHashesAsync(string segment, CancellationToken ct)
    {
        var members = new Dictionary<string, string>(StringComparer.Ordinal);
        await foreach (var m in MembersOfAsync(segment, ct))
        {
            members[m.CustomerId] = m.ScriptHash;
        }

        return members;
    }

    private async Task<HashSet<string>> MemberIdsAsync(string segment, CancellationToken ct)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var m in MembersOfAsync(segment, ct))
        {
            ids.Add(m.CustomerId);
        }

        return ids;
    }

    private async IAsyncEnumerable<SegmentMember> MembersOfAsync(string segment, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var prefix = segment + "|";
        var after = prefix;
        while (true)
        {
            var page = await Members.ListAsync(Page, after, ct);
            foreach (var m in page)
            {
                if (!m.Id.StartsWith(prefix, StringComparison.Ordinal))
                {
                    yield break;
                }

                yield return m;
            }

            if (page.Count < Page)
            {
                yield break;
            }

            after = page[^1].Id;
        }
    }

    // ------------------------------------------------------------------ incremental

    /// <summary>Re-evaluates one customer against every active segment and stores the differences.</summary>
    public async Task ReevaluateAsync(IEnumerable<string> customerIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(customerIds);
        await _work.WaitAsync(cancellationToken);
        try
        {
            await ReevaluateLockedAsync(customerIds.Distinct(StringComparer.Ordinal).ToList(), cancellationToken);
        }
        finally
        {
            _work.Release();
        }
    }

    private async Task ReevaluateLockedAsync(IReadOnlyList<string> customerIds, CancellationToken ct)
    {
        var segments = _catalog.Segments.Where(s => !IsFailed(s.Name)).ToList();
        if (segments.Count == 0 || customerIds.Count == 0)
        {
            return;
        }

        var asOf = _time.GetUtcNow();
        foreach (var id in customerIds)
        {
            var customer = await _store.Customers.GetAsync(id, ct);
            var all = customer is null ? null : await CustomerFacts.LoadAsync(_store, customer, asOf, ct, null);
            foreach (var rule in segments)
            {
                var facts = all is null ? null : Only(all, FieldsOf(rule));
                await RememberVersionAsync(rule, ct);
                var memberId = SegmentMember.IdOf(rule.Name, id);
                var stored = await Members.GetAsync(memberId, ct);
                if (facts is null)
                {
                    if (stored is not null)
                    {
                        await Members.DeleteAsync(memberId, null, ct);
                    }

                    continue;
                }

                var result = await RunAsync(rule.Script, facts, asOf, false, ct);
                var health = _health.GetOrAdd(rule.Name, _ => new Health());
                if (result.Error is not null)
                {
                    health.Failures++;
                    health.LastError = result.Error;
                    health.Dirty = true;
                    continue;
                }

                if (health.Failures > 0)
                {
                    health.Failures = 0;
                    health.Dirty = true;
                }

                var isIn = (bool)result.Value!;
                if (isIn && stored is null)
                {
                    await Members.CreateAsync(NewMember(rule, id, asOf), ct);
                }
                else if (isIn && stored!.ScriptHash != rule.Hash)
                {
                    stored.ScriptHash = rule.Hash;
                    stored.DecidedAt = asOf;
                    await Members.UpdateAsync(stored, ct);
                }
                else if (!isIn && stored is not null)
                {
                    await Members.DeleteAsync(memberId, null, ct);
                }
            }
        }

        foreach (var rule in segments)
        {
            if (_health.TryGetValue(rule.Name, out var h) && h.Dirty)
            {
                await SaveStateAsync(rule, h, null, rebuilt: false, ct);
            }
        }
    }

    /// <summary>The same fields a full rebuild gives the script, taken from the complete facts.</summary>
    private static Dictionary<string, object?> Only(Dictionary<string, object?> all, IReadOnlySet<string>? fields) =>
        fields is null ? all : all.Where(p => fields.Contains(p.Key)).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);

    private readonly ConcurrentDictionary<string, IReadOnlySet<string>?> _fields = new(StringComparer.Ordinal);

    private IReadOnlySet<string>? FieldsOf(LoadedRule rule) =>
        _fields.GetOrAdd(rule.Hash, _ => CustomerFacts.ReferencedFields(rule.Script.Code, RuleCatalog.SegmentParameters[0]));

    private bool IsFailed(string segment) => _health.TryGetValue(segment, out var h) && h.Failures >= _options.SegmentFailureThreshold;

    /// <summary>
    /// Reads the change feed from the stored position, re-evaluates every customer touched (directly
    /// or through an order or activity) and stores the new position. Returns the changes read.
    /// </summary>
    public async Task<int> ProcessChangesAsync(CancellationToken cancellationToken = default)
    {
        var cursor = await Cursors.GetAsync(CursorId, cancellationToken);
        // First start: rebuild what is not current, then read on from where the oldest rebuild started.
        cursor ??= await StartFeedAsync(cancellationToken);

        var from = Math.Max(cursor.Position, Interlocked.Read(ref _skipTo));
        var changes = await _store.Changes.ReadAsync(from, 1000, cancellationToken);
        if (changes.Count == 0)
        {
            return 0;
        }

        var customers = new List<string>();
        var relevant = false;
        foreach (var change in changes)
        {
            switch (change.Entity)
            {
                case EntityNames.Customer:
                    customers.Add(change.EntityId);
                    relevant = true;
                    break;
                case EntityNames.Order:
                case EntityNames.Activity:
                    customers.AddRange(await CustomersOfAsync(change, cancellationToken));
                    relevant = true;
                    break;
            }
        }

        if (customers.Count > 0)
        {
            await ReevaluateAsync(customers, cancellationToken);
        }

        if (relevant)
        {
            cursor.Position = changes[^1].Sequence;
            await Cursors.UpdateAsync(cursor, cancellationToken);
        }
        else
        {
            // Only our own writes (or unrelated collections): move on in memory without writing,
            // so the cursor write itself does not keep the loop busy. A restart re-reads this tail.
            Interlocked.Exchange(ref _skipTo, changes[^1].Sequence);
            return changes.Count == 1000 ? changes.Count : 0;
        }

        Interlocked.Exchange(ref _skipTo, changes[^1].Sequence);
        return changes.Count;
    }

    private long _skipTo;

    /// <summary>
    /// First start: every segment not yet rebuilt with its current script is rebuilt once; the change feed is then
    /// followed from the oldest position any segment's rebuild started at, so no change is missed (re-reading a
    /// change only re-evaluates a customer again).
    /// </summary>
    private async Task<RulesCursor> StartFeedAsync(CancellationToken ct)
    {
        var position = await _store.Changes.LastSequenceAsync(ct);
        foreach (var rule in _catalog.Segments)
        {
            var state = await States.GetAsync(rule.Name, ct);
            if (state?.RebuiltWithHash != rule.Hash)
            {
                await RebuildAsync(rule.Name, ct);
                state = await States.GetAsync(rule.Name, ct);
            }

            position = Math.Min(position, state?.RebuiltFromSequence ?? 0);
        }

        return await Cursors.CreateAsync(new RulesCursor { Id = CursorId, Position = position }, ct);
    }

    /// <summary>The customer(s) an order or activity change concerns (before and after, in case it moved).</summary>
    private async Task<IEnumerable<string>> CustomersOfAsync(ChangeRecord change, CancellationToken ct)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        if (change.Operation != ChangeOperation.Delete)
        {
            var current = change.Entity == EntityNames.Order
                ? (await _store.Orders.GetAsync(change.EntityId, ct))?.CustomerId
                : (await _store.Activities.GetAsync(change.EntityId, ct))?.CustomerId;
            if (!string.IsNullOrEmpty(current))
            {
                ids.Add(current);
            }
        }

        if (change.Operation != ChangeOperation.Create)
        {
            var history = await _store.Audit.ForEntityAsync(change.Entity, change.EntityId, ct);
            foreach (var entry in history.Where(e => e.Sequence == change.Sequence))
            {
                foreach (var field in entry.Changes.Where(f => f.Field.Equals("CustomerId", StringComparison.OrdinalIgnoreCase)))
                {
                    foreach (var json in new[] { field.Before, field.After })
                    {
                        if (json is not null && TryText(json) is { Length: > 0 } id)
                        {
                            ids.Add(id);
                        }
                    }
                }
            }
        }

        return ids;
    }

    private static string? TryText(string json)
    {
        try
        {
            return JsonSerializer.Deserialize<string>(json);
        }
        catch (JsonException)
        {
            return json;
        }
    }

    // ------------------------------------------------------------------ state

    private async Task RememberVersionAsync(LoadedRule rule, CancellationToken ct)
    {
        if (_known.ContainsKey(rule.Hash))
        {
            return;
        }

        if (await Versions.GetAsync(rule.Hash, ct) is null)
        {
            await Versions.CreateAsync(new RuleVersion { Id = rule.Hash, Name = rule.Name, Kind = rule.Kind.ToString(), Path = rule.Script.Path, Code = rule.Script.Code }, ct);
        }

        _known[rule.Hash] = true;
    }

    private readonly ConcurrentDictionary<string, bool> _known = new(StringComparer.Ordinal);

    private async Task SaveStateAsync(LoadedRule rule, Health health, long? members, bool rebuilt, CancellationToken ct, long fromSequence = 0)
    {
        var state = await States.GetAsync(rule.Name, ct);
        var isNew = state is null;
        state ??= new SegmentState { Id = rule.Name };
        state.ScriptHash = rule.Hash;
        state.ConsecutiveFailures = health.Failures;
        state.Status = health.Failures >= _options.SegmentFailureThreshold ? SegmentStatus.Failed : SegmentStatus.Active;
        if (health.LastError is not null)
        {
            state.LastError = health.LastError.ToString();
            state.LastErrorAt = _time.GetUtcNow();
        }

        if (members is { } m)
        {
            state.Members = m;
        }

        if (rebuilt)
        {
            state.LastRebuildAt = _time.GetUtcNow();
            state.RebuiltWithHash = rule.Hash;
            state.RebuiltFromSequence = fromSequence;
            state.Rebuilds++;
        }

        health.Dirty = false;
        if (state.Status == SegmentStatus.Failed)
        {
            _logger?.LogError("Segment '{Segment}' marked failed after {Failures} failing runs: {Error}", rule.Name, health.Failures, state.LastError);
        }

        if (isNew)
        {
            await States.CreateAsync(state, ct);
        }
        else
        {
            await States.UpdateAsync(state, ct);
        }
    }

    /// <summary>Every segment: loaded scripts with their state, and files refused at their last load.</summary>
    public async Task<IReadOnlyList<SegmentInfo>> ListAsync(CancellationToken cancellationToken = default)
    {
        var list = new List<SegmentInfo>();
        foreach (var rule in _catalog.Segments)
        {
            var state = await States.GetAsync(rule.Name, cancellationToken);
            var count = 0L;
            await foreach (var _ in MembersOfAsync(rule.Name, cancellationToken))
            {
                count++;
            }

            var refused = _catalog.RefusedFiles.FirstOrDefault(p => Path.GetFileNameWithoutExtension(p.Key) == rule.Name && p.Key.Contains("segments", StringComparison.Ordinal)).Value;
            list.Add(new SegmentInfo(rule.Name, rule.Hash, state?.Status ?? SegmentStatus.Active, count, state?.LastError, state?.LastRebuildAt, refused?.ToString())
            {
                TimeDependent = IsTimeDependent(rule),
                Rebuilds = state?.Rebuilds ?? 0,
            });
        }

        foreach (var (path, error) in _catalog.RefusedFiles.Where(p => p.Key.Contains("segments", StringComparison.Ordinal)))
        {
            var name = Path.GetFileNameWithoutExtension(path);
            if (list.All(s => s.Name != name))
            {
                list.Add(new SegmentInfo(name, null, SegmentStatus.Failed, 0, null, null, error.ToString()));
            }
        }

        return list;
    }

    public async Task<SegmentState?> StateAsync(string segment, CancellationToken cancellationToken = default) =>
        await States.GetAsync(segment, cancellationToken);

    /// <summary>Customer ids in the segment, in id order, a page at a time.</summary>
    public async Task<IReadOnlyList<SegmentMember>> MembersAsync(string segment, int limit = 100, string? afterCustomerId = null,
        CancellationToken cancellationToken = default)
    {
        var prefix = segment + "|";
        var page = await Members.ListAsync(limit, afterCustomerId is null ? prefix : prefix + afterCustomerId, cancellationToken);
        return page.TakeWhile(m => m.Id.StartsWith(prefix, StringComparison.Ordinal)).ToList();
    }

    public async Task<bool> IsMemberAsync(string segment, string customerId, CancellationToken cancellationToken = default) =>
        await Members.GetAsync(SegmentMember.IdOf(segment, customerId), cancellationToken) is not null;

    /// <summary>
    /// Why the customer is in or out: the stored decision, and a traced re-run of the script version
    /// that made it (from <c>rules_versions</c>) on the customer's data as it is now.
    /// </summary>
    /// <param name="access">Who asks (<c>--as</c>): a customer they may not read is "not there"; the facts the script sees are
    /// theirs (orders and activities they may not read left out of lists and figures, hidden fields absent, so also from the
    /// trace), and the stored decision is withheld when it would tell them what they may not see. Null: the machine operator.</param>
    public async Task<SegmentExplanation> ExplainAsync(string segment, string customerId, CancellationToken cancellationToken = default,
        Admin.FactsAccess? access = null)
    {
        var rule = _catalog.Find(RuleKind.Segment, segment) ?? throw new ArgumentException($"There is no segment '{segment}'.", nameof(segment));
        var asOf = _time.GetUtcNow();
        var customer = await _store.Customers.GetAsync(customerId, cancellationToken) is { } found && (access is null || access.MayRead(found))
            ? found
            : throw new ArgumentException($"There is no customer '{customerId}'{(access is null ? "" : $" that user '{access.User}' may read")}.", nameof(customerId));
        var facts = await CustomerFacts.LoadAsAsync(_store, customer, asOf, access, cancellationToken);
        var member = await Members.GetAsync(SegmentMember.IdOf(segment, customerId), cancellationToken);
        var state = await States.GetAsync(segment, cancellationToken);
        var hash = member?.ScriptHash ?? state?.RebuiltWithHash ?? rule.Hash;
        var script = rule.Script;
        if (hash != rule.Hash && await Versions.GetAsync(hash, cancellationToken) is { } version)
        {
            script = _catalog.Load(RuleKind.Segment, segment, version.Code, version.Path).Script;
        }
        else
        {
            hash = rule.Hash;
        }

        var run = await RunAsync(script, facts, asOf, trace: true, cancellationToken);
        var withheld = access is not null && !await ViewFor(access).SeesMembershipAsync(segment, customer.Id, cancellationToken);
        return new SegmentExplanation(segment, customerId, !withheld && member is not null, hash, withheld ? null : member?.DecidedAt, hash == rule.Hash, run)
        {
            Reader = access?.User,
            MembershipWithheld = withheld,
        };
    }

    // ------------------------------------------------------------------ who sees which segments

    /// <summary>
    /// The segments and memberships <paramref name="reader"/> may see (null: the machine operator, who sees all). The API's
    /// segment lists, member lists and per-customer segments, <c>segments explain --as</c> and the per-customer export ask
    /// it, so they agree. Make one per request: it remembers each customer's orders/activities check.
    /// </summary>
    public SegmentView ViewFor(Admin.FactsAccess? reader) => new(this, reader);

    /// <summary>The fields the current script of <paramref name="segment"/> reads (null: cannot be told); false when there is no such segment.</summary>
    internal bool TryFieldsOf(string segment, out IReadOnlySet<string>? fields)
    {
        fields = null;
        if (_catalog.Find(RuleKind.Segment, segment) is not { } rule)
        {
            return false;
        }

        fields = FieldsOf(rule);
        return true;
    }

    internal ICrmStore Store => _store;

    /// <summary>The loaded segments' names, in catalog order.</summary>
    public IEnumerable<string> SegmentNames => _catalog.Segments.Select(r => r.Name);

    // ------------------------------------------------------------------ background

    private void OnScriptChanged(RuleKind kind, string name, LoadedRule? rule)
    {
        if (kind != RuleKind.Segment)
        {
            return;
        }

        _health.TryRemove(name, out _);
        _rebuilds.Enqueue(name);
        _wake.Release();
    }

    /// <summary>
    /// Claims (and so creates) the service's collections before the background loop and any reader start: LiteDB 5
    /// can fail a read with "page type must be collection page" when it races with the write creating the collection.
    /// </summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _ = Members;
        _ = States;
        _ = Versions;
        _ = Cursors;
        return StartCoreAsync(cancellationToken);
    }

    private async Task StartCoreAsync(CancellationToken cancellationToken)
    {
        if (_scheduler is not null)
        {
            await ScheduleTimeRefreshAsync(_scheduler, _options.TimeRefresh, cancellationToken);
        }

        await base.StartAsync(cancellationToken);
    }

    /// <summary>The scheduler's job kind that refreshes the time-dependent segments.</summary>
    public const string TimeRefreshJobKind = "rules.segments-time-refresh";

    /// <summary>
    /// Keeps one recurring job every <paramref name="interval"/> (none when zero). An existing job with the same
    /// interval is kept, so a restart does not move its next run; a changed interval replaces it.
    /// </summary>
    internal static async Task ScheduleTimeRefreshAsync(IScheduler scheduler, TimeSpan interval, CancellationToken ct)
    {
        var existing = await scheduler.FindByKeyAsync(TimeRefreshJobKind, ct);
        if (interval <= TimeSpan.Zero)
        {
            if (existing is not null)
            {
                await scheduler.CancelAsync(existing.Id, ct);
            }

            return;
        }

        if (existing is { Schedule.Type: JobScheduleType.Interval } && existing.Schedule.Interval == interval && existing.State != JobState.Parked)
        {
            return;
        }

        await scheduler.ScheduleAsync(new JobRequest
        {
            Kind = TimeRefreshJobKind,
            Schedule = JobSchedule.Every(interval),
            UniqueKey = TimeRefreshJobKind,
            UniqueKeyPolicy = UniqueKeyPolicy.Replace,
            Misfire = MisfirePolicy.RunOnce,
        }, ct);
    }

    // ------------------------------------------------------------------ time-dependent segments

    private static readonly HashSet<string> TimeFields = new(StringComparer.Ordinal)
    {
        "daysSinceLastOrder", "daysSinceLastActivity", "spentLast30Days", "spentLast90Days", "spentLast180Days",
        "spentLast365Days", "ordersLast180Days",
    };

    private static readonly System.Text.RegularExpressions.Regex ReadsTheClock = new(
        @"\bdates\s*\.\s*(now|today|daysSince|daysAgo|withinDays|olderThanDays)\b|\bDate\s*\.\s*now\b|\bnew\s+Date\s*\(\s*\)",
        System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>
    /// Whether the segment's answer can change with time alone: the header says so (<c>// @timeDependent yes|no</c>),
    /// or the script reads a figure counted from now (<c>daysSinceLastOrder</c>, <c>spentLast90Days</c>, ...), calls a
    /// helper that reads the clock (<c>dates.now</c>, <c>dates.withinDays</c>, ...), or passes <c>customer</c> on so that
    /// its reads cannot be told (then it is assumed to).
    /// </summary>
    public bool IsTimeDependent(LoadedRule rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        if (rule.Script.Header.TryGetValue("timedependent", out var declared))
        {
            return !(declared.Equals("no", StringComparison.OrdinalIgnoreCase) || declared.Equals("false", StringComparison.OrdinalIgnoreCase));
        }

        var fields = FieldsOf(rule);
        return fields is null || fields.Overlaps(TimeFields) || ReadsTheClock.IsMatch(rule.Script.Code);
    }

    /// <summary>Rebuilds every active time-dependent segment (the scheduler's <see cref="TimeRefreshJobKind"/> job).</summary>
    public async Task<IReadOnlyList<RebuildReport>> RefreshTimeDependentAsync(CancellationToken cancellationToken = default)
    {
        var reports = new List<RebuildReport>();
        foreach (var rule in _catalog.Segments.Where(r => IsTimeDependent(r) && !IsFailed(r.Name)))
        {
            reports.Add(await RebuildAsync(rule.Name, cancellationToken));
        }

        return reports;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        var lastRefresh = _time.GetUtcNow();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                // The first pass starts the change feed (rebuilding what is not current) before the reload queue is
                // looked at, so a first start rebuilds each segment once.
                var read = await ProcessChangesAsync(stoppingToken);
                while (_rebuilds.TryDequeue(out var name))
                {
                    if (_catalog.Find(RuleKind.Segment, name) is { } rule)
                    {
                        // After a restart the stored membership of an unchanged script is current: no rebuild.
                        var state = await States.GetAsync(name, stoppingToken);
                        if (state?.RebuiltWithHash == rule.Hash)
                        {
                            if (state.Status == SegmentStatus.Failed)
                            {
                                var health = _health.GetOrAdd(name, _ => new Health());
                                health.Failures = Math.Max(health.Failures, state.ConsecutiveFailures);
                                health.LastError ??= new RuleError(rule.Script.Path ?? name, 0, 0, RuleErrorKind.Runtime, RuleBudgetKind.None, state.LastError ?? "failed");
                            }

                            continue;
                        }

                        await RebuildAsync(name, stoppingToken);
                    }
                    else
                    {
                        await DropAsync(name, stoppingToken);
                    }
                }

                if (_scheduler is null && _options.TimeRefresh > TimeSpan.Zero && _time.GetUtcNow() - lastRefresh >= _options.TimeRefresh)
                {
                    lastRefresh = _time.GetUtcNow();
                    await RefreshTimeDependentAsync(stoppingToken);
                }

                read += await ProcessChangesAsync(stoppingToken);
                if (read >= 1000)
                {
                    continue;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // the service keeps going; the error is logged
            catch (Exception ex)
            {
                _logger?.LogError(ex, "Segment maintenance failed; retrying");
            }
#pragma warning restore CA1031

            try
            {
                await _wake.WaitAsync(_options.ChangePollInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>A segment whose script was deleted: its members and state go too.</summary>
    private async Task DropAsync(string segment, CancellationToken ct)
    {
        await _work.WaitAsync(ct);
        try
        {
            foreach (var id in await MemberIdsAsync(segment, ct))
            {
                await Members.DeleteAsync(SegmentMember.IdOf(segment, id), null, ct);
            }

            if (await States.GetAsync(segment, ct) is not null)
            {
                await States.DeleteAsync(segment, null, ct);
            }
        }
        finally
        {
            _work.Release();
        }
    }

    public override void Dispose()
    {
        _catalog.Changed -= OnScriptChanged;
        _work.Dispose();
        _wake.Dispose();
        base.Dispose();
    }
}

/// <summary>The scheduler job that refreshes the time-dependent segments (<see cref="SegmentService.TimeRefreshJobKind"/>).</summary>
internal sealed class SegmentTimeRefreshJob(SegmentService segments) : IJobHandler
{
    public Task ExecuteAsync(JobExecutionContext context, CancellationToken cancellationToken) =>
        segments.RefreshTimeDependentAsync(cancellationToken);
}
