using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.Security;

namespace CrmEngine.Webhooks;

/// <summary>A subscription as the command line shows it (never its secret).</summary>
public sealed record WebhookInfo(string Id, string Url, IReadOnlyList<string> Events, bool Active, string? Description,
    DateTimeOffset CreatedAt, string CreatedBy, string? User = null);

/// <summary>One delivery in a subscription's history.</summary>
public sealed record WebhookDeliveryInfo(string Id, long Sequence, string Event, string EntityId, string State, int Attempts,
    int? LastStatusCode, string? LastError, DateTimeOffset? NextAttemptAt, DateTimeOffset CreatedAt);

/// <summary>How a redelivery request ended.</summary>
public enum RedeliverOutcome { Requeued, NotFound, NotParked }

/// <summary>
/// <c>crm webhooks list|create|delete|deliveries|redeliver</c>: in the running engine (through the control channel; the
/// dispatcher is woken at once) or on the stopped database (<see cref="OpenOffline"/>; the work is picked up at the next
/// start). The same checks as the API: URL rules including <c>Webhooks:AllowPrivateTargets</c>, event patterns.
/// </summary>
public sealed class WebhookAdministration : IDisposable
{
    private readonly WebhookStore _store;
    private readonly WebhookOptions _options;
    private readonly Action _wake;
    private readonly CrmDatabase? _owned;
    private readonly SecurityDirectory? _security;

    internal WebhookAdministration(WebhookStore store, WebhookOptions options, Action wake, CrmDatabase? owned = null, SecurityDirectory? security = null)
    {
        _store = store;
        _options = options;
        _wake = wake;
        _owned = owned;
        _security = security;
    }

    /// <summary>Opens the stopped engine's database (the caller checked nobody else has it open).</summary>
    public static WebhookAdministration OpenOffline(StoreOptions store, string? contentRoot, WebhookOptions options)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        var database = new CrmDatabase(store, TimeProvider.System, null, contentRoot);
        try
        {
            // The access model of the stopped database, to check --as (read through a store without handlers: reads only).
            var stores = new CrmEngine.Core.Storage.StoreProvider(new CrmEngine.Core.Pipeline.WritePipeline(database,
                new CrmEngine.Core.Pipeline.WriteHandlerRegistry(), new CrmEngine.Core.PipelineOptions(), () => []));
            return new WebhookAdministration(new WebhookStore(database), options, () => { }, database, new SecurityDirectory(stores));
        }
        catch
        {
            database.Dispose();
            throw;
        }
    }

    public IReadOnlyList<WebhookInfo> List() => _store.List().Select(Info).ToList();

    /// <summary>Creates a subscription; returns it and its secret (shown once). Bad input throws <see cref="ArgumentException"/> naming it.</summary>
    public async Task<(WebhookInfo Subscription, string Secret)> CreateAsync(string url, IReadOnlyList<string> events, string? description, string createdBy,
        string? user = null)
    {
        var problems = new List<string>();
        if (user is not null && await UserProblemAsync(user).ConfigureAwait(false) is { } badUser)
        {
            problems.Add("--as " + badUser);
        }

        if (SubscriptionInput.ValidateUrl(url ?? "", TargetPolicy.From(_options)) is { } badUrl)
        {
            problems.Add("--url " + badUrl);
        }

        var patterns = (events ?? []).SelectMany(e => e.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        if (patterns.Count == 0)
        {
            problems.Add("--events is required (for example customer.* or *)");
        }

        problems.AddRange(patterns.Select(p => WebhookEvents.Validate(p) is { } bad ? $"--events '{p}': {bad}" : null).OfType<string>());
        if (description is { Length: > 500 })
        {
            problems.Add("--description must be at most 500 characters");
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", problems));
        }

        var (created, secret) = await _store.CreateAsync(url!, patterns, null, true, description, createdBy, user).ConfigureAwait(false);
        _wake();
        return (Info(created), secret);
    }

    public async Task<bool> DeleteAsync(string id)
    {
        var deleted = await _store.DeleteAsync(id).ConfigureAwait(false);
        _wake();
        return deleted;
    }

    /// <summary>The newest deliveries of a subscription (null when there is no such subscription).</summary>
    public IReadOnlyList<WebhookDeliveryInfo>? Deliveries(string id, string? state, int limit)
    {
        if (_store.Get(id) is null)
        {
            return null;
        }

        DeliveryState? filter = null;
        if (!string.IsNullOrWhiteSpace(state))
        {
            filter = Enum.TryParse<DeliveryState>(state, ignoreCase: true, out var parsed) && !int.TryParse(state, out _)
                ? parsed
                : throw new ArgumentException($"--state '{state}' is not a state: use pending, retrying, delivered, parked or skipped");
        }

        if (limit is < 1 or > 500)
        {
            throw new ArgumentException($"--limit {limit} must be between 1 and 500");
        }

        return _store.History(id, filter, limit, null).Select(d => new WebhookDeliveryInfo(d.Id, d.Sequence, d.Event, d.EntityId,
            d.State.ToString().ToLowerInvariant(), d.Attempts, d.LastStatusCode, d.LastError, d.NextAttemptAt, d.CreatedAt)).ToList();
    }

    /// <summary>
    /// Puts a parked delivery back in line with a fresh set of tries, judged again as the subscription's user now (one the
    /// user may no longer receive becomes skipped and is reported as not parked: <see cref="DeliveryState"/> says skipped).
    /// </summary>
    public async Task<RedeliverOutcome> RedeliverAsync(string id, string deliveryId)
    {
        var (retried, _) = await _store.RedeliverAsync(id, deliveryId, user => SubscriberAccess.ForAsync(_security, user, CancellationToken.None))
            .ConfigureAwait(false);
        var outcome = retried switch
        {
            RetryOutcome.Requeued => RedeliverOutcome.Requeued,
            RetryOutcome.NotParked or RetryOutcome.Refused => RedeliverOutcome.NotParked,
            _ => RedeliverOutcome.NotFound,
        };
        _wake();
        return outcome;
    }

    /// <summary>The state of one delivery (for messages), or null.</summary>
    public string? DeliveryState(string deliveryId) => _store.Delivery(deliveryId)?.State.ToString().ToLowerInvariant();

    private static WebhookInfo Info(WebhookSubscription s) => new(s.Id, s.Url, s.Events, s.Active, s.Description, s.CreatedAt, s.CreatedBy, s.User);

    /// <summary>Why <paramref name="user"/> cannot own a subscription (unknown or deactivated), or null.</summary>
    private async Task<string?> UserProblemAsync(string user)
    {
        if (_security is null)
        {
            return $"'{user}': the access model is not available in this engine";
        }

        var snapshot = await _security.SnapshotAsync().ConfigureAwait(false);
        return !snapshot.Users.TryGetValue(user, out var known) ? $"'{user}': there is no such user (crm users list)"
            : known.Deactivated ? $"'{user}': the user is deactivated"
            : null;
    }

    public void Dispose() => _owned?.Dispose();
}
