using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using CrmEngine.Security;
using Microsoft.Extensions.Hosting;

namespace CrmEngine.DataExchange.Duplicates;

/// <summary>
/// Duplicate checks on every customer create, as pipeline handlers owned by <c>dataexchange</c>: a Validate handler
/// refuses creates matched by a Block rule (naming the existing customer), a PreOperation handler tags creates matched
/// by a Warn (or Merge) rule with <c>possible-duplicate</c> and the other ids in custom field <c>possibleDuplicateOf</c>.
/// Both only read the store (in the write's transaction) and change the image, so running twice is harmless.
/// A write acting as a user (API key, <c>ForActor(userId)</c>) is told only of customers that user may read
/// (<see cref="DuplicateAccess"/>): a Block match on another customer is refused with a neutral message (no id, name or
/// value), a Warn match on one is left out of the mark.
/// Imports (actor <c>import:...</c>) are checked by the importer itself before each batch, where Merge can act.
/// </summary>
internal sealed class DuplicateGuard : IHostedService
{
    public const string Owner = "dataexchange";
    public const string Tag = "possible-duplicate";
    public const string OtherField = "possibleDuplicateOf";
    public const string ImportActorPrefix = "import:";

    private readonly IWriteHandlerRegistry _registry;
    private readonly DuplicateFinder _finder;
    private readonly ICrmStore _store;
    private readonly SecurityDirectory? _directory;
    private readonly List<IDisposable> _registrations = [];

    /// <param name="directory">The access model; without it every writer is told of every duplicate (no users).</param>
    public DuplicateGuard(IWriteHandlerRegistry registry, DuplicateFinder finder, IStoreProvider stores, SecurityDirectory? directory = null)
    {
        _registry = registry;
        _finder = finder;
        _store = stores.ForActor("system:" + Owner);
        _directory = directory;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _finder.EnsureIndexAsync();
        _registrations.Add(_registry.Register(HandlerRegistration.Create<Customer>(Owner, EntityNames.Customer, PipelineStage.Validate, 0,
            "dataexchange:DuplicateBlock", ValidateAsync, Wants)));
        _registrations.Add(_registry.Register(HandlerRegistration.Create<Customer>(Owner, EntityNames.Customer, PipelineStage.PreOperation, 0,
            "dataexchange:DuplicateTag", TagAsync, Wants)));
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (var r in _registrations)
        {
            r.Dispose();
        }

        _registrations.Clear();
        return Task.CompletedTask;
    }

    /// <summary>Decided before the call, so imports (checked by the importer) cost the writer nothing here.</summary>
    private static bool Wants(ChangeOperation operation, string actor) =>
        operation == ChangeOperation.Create && !actor.StartsWith(ImportActorPrefix, StringComparison.Ordinal);

    private static bool Applies(WriteEvent<Customer> e) =>
        e.Operation == ChangeOperation.Create && e.After is not null && !e.Actor.StartsWith(ImportActorPrefix, StringComparison.Ordinal);

    private async Task ValidateAsync(WriteEvent<Customer> e, CancellationToken ct)
    {
        if (!Applies(e))
        {
            return;
        }

        var blocked = (await _finder.FindAsync(_store, e.After!, e.EntityId, ct)).Where(m => _finder.ActionFor(m.Rule) == DuplicateAction.Block).ToList();
        if (blocked.Count == 0)
        {
            return;
        }

        var access = await DuplicateAccess.OfActorAsync(_directory, e.Actor, ct);
        var (readable, hidden) = await DuplicateAccess.SplitAsync(access, _store, blocked, ct);
        foreach (var m in readable)
        {
            e.Reject(FieldOf(m.Rule), $"duplicate of customer {m.CustomerId} '{m.CustomerName}': {m.Detail}");
        }

        // One neutral refusal per rule: how many hidden customers match is not told either.
        foreach (var rule in hidden.Select(m => m.Rule).Distinct(StringComparer.Ordinal))
        {
            e.Reject(FieldOf(rule), DuplicateAccess.Neutral(access!.UserId, rule));
        }
    }

    private async Task TagAsync(WriteEvent<Customer> e, CancellationToken ct)
    {
        if (!Applies(e))
        {
            return;
        }

        var others = (await _finder.FindAsync(_store, e.After!, e.EntityId, ct))
            .Where(m => _finder.ActionFor(m.Rule) is DuplicateAction.Warn or DuplicateAction.Merge).ToList();
        if (others.Count == 0)
        {
            return;
        }

        // Only customers the writing user may read are named (and a mark of hidden ones alone would tell they exist).
        var (readable, _) = await DuplicateAccess.SplitAsync(await DuplicateAccess.OfActorAsync(_directory, e.Actor, ct), _store, others, ct);
        MarkPossibleDuplicate(e.After!, readable.Select(m => m.CustomerId).ToList());
    }

    public static void MarkPossibleDuplicate(Customer customer, IReadOnlyCollection<string> otherIds)
    {
        if (otherIds.Count == 0)
        {
            return;
        }

        if (!customer.Tags.Contains(Tag, StringComparer.OrdinalIgnoreCase))
        {
            customer.Tags.Add(Tag);
        }

        var existing = customer.Custom.TryGetValue(OtherField, out var v) && v.Text is { } t
            ? t.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : [];
        customer.Custom[OtherField] = CustomValue.Of(string.Join(",", existing.Concat(otherIds).Distinct(StringComparer.Ordinal)));
    }

    public static string FieldOf(string rule) => rule switch
    {
        DuplicateMatch.EmailRule => nameof(Customer.Emails),
        DuplicateMatch.PhoneRule => nameof(Customer.Phones),
        _ => nameof(Customer.Name),
    };
}
