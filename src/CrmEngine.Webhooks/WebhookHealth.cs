using CrmEngine.Api;

namespace CrmEngine.Webhooks;

/// <summary>
/// <c>/health</c> part: counts only. Degraded while deliveries are parked (someone has to look at them); the lag is how
/// many changes the dispatcher has not yet turned into deliveries.
/// </summary>
internal sealed class WebhookHealth(WebhookStore store, WebhookDispatcher dispatcher, CrmEngine.Core.Storage.CrmDatabase database) : IHealthContributor
{
    public string Name => "webhooks";

    public Task<HealthReport> CheckAsync(CancellationToken cancellationToken)
    {
        var (pending, retrying, parked) = store.Counts();
        var cursor = store.ReadCursor() ?? dispatcher.Cursor;
        var details = new Dictionary<string, object?>
        {
            ["activeSubscriptions"] = store.ActiveCount(),
            ["pending"] = pending,
            ["retrying"] = retrying,
            ["parked"] = parked,
            ["changeLag"] = Math.Max(0, database.ReadLastSequence() - cursor),
        };
        return Task.FromResult(new HealthReport(parked > 0 ? "degraded" : "ok", details));
    }
}
