using System.Globalization;
using System.Text.Json;
using CrmEngine.Abstractions.Store;
using CrmEngine.Abstractions.Model;
using CrmEngine.Security;
using CrmEngine.Core.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CrmEngine.Api.Endpoints;

/// <summary>One committed write as the change feed shows it (deletes included).</summary>
public sealed record ChangeItem(long Sequence, string Entity, string Id, ChangeOperation Operation, long Version, DateTimeOffset At, string Actor);

/// <summary>
/// A page of the change feed. Store <see cref="Next"/> and ask again with <c>since=Next</c>: every change comes exactly
/// once, in order. <see cref="More"/> is true when more changes were already waiting beyond this page.
/// </summary>
public sealed record ChangesPage(IReadOnlyList<ChangeItem> Changes, long Next, long LastSequence, bool More);

/// <summary>
/// <c>GET /api/changes?since=&amp;limit=&amp;wait=</c>: the change feed for synchronising clients (read scope). A caller sees
/// the changes of records it may read, judged by the record's owner as of that change (from the audit log); the others
/// are skipped, and <c>next</c> moves past them, so exactly-once holds for what the caller may see. A caller who sees
/// every record of an entity pays no look-up.
/// </summary>
internal static class ChangesEndpoints
{
    // Long-poll check interval: the store's newest sequence is an in-memory counter, so this costs nothing while idle.
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(50);

    public static void Map(RouteGroupBuilder api)
    {
        api.MapGet("/changes", GetAsync)
            .RequireAuthorization(ApiPolicies.Read)
            .WithName("GetChanges")
            .WithTags("Changes")
            .WithSummary("The change feed in commit order, after a sequence number")
            .WithDescription("Returns changes with a sequence greater than `since` (default 0), oldest first, at most `limit` (default 100). " +
                             "Store `next` and pass it as `since` next time: every change is seen exactly once, in order, deletes included. " +
                             "With `wait` > 0 (seconds) and nothing new, the request waits up to that long for a change (long poll).")
            .ProducesProblem(StatusCodes.Status400BadRequest);
    }

    private static async Task<Results<Ok<ChangesPage>, ProblemHttpResult>> GetAsync(
        string? since, string? limit, string? wait,
        IChangeFeed feed, CrmDatabase database, IOptions<ApiOptions> options, IHostApplicationLifetime lifetime, HttpContext context)
    {
        var settings = options.Value;
        if (!TryParse(since, 0, out var after) || after < 0)
        {
            return Problem("since", "must be a change sequence number (0 or more)");
        }

        if (!TryParse(limit, 100, out var max) || max < 1 || max > settings.MaxChangesLimit)
        {
            return Problem("limit", $"must be between 1 and {settings.MaxChangesLimit}");
        }

        if (!TryParse(wait, 0, out var waitSeconds) || waitSeconds < 0)
        {
            return Problem("wait", "must be a number of seconds (0 or more)");
        }

        var waitFor = TimeSpan.FromSeconds(Math.Min(waitSeconds, settings.MaxChangesWait.TotalSeconds));
        // A long poll ends early when the engine stops, so shutdown never waits for it.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        var deadline = DateTime.UtcNow + waitFor;
        var visibility = new ChangeVisibility(await context.CrmAccessAsync(), context.CrmStore().Audit);
        var (page, next, more) = await CollectAsync(feed, visibility, after, (int)max, context.RequestAborted);
        // Nothing the caller may see yet: wait (long poll) from past what was skipped, so skipped changes never come back.
        while (page.Count == 0 && !more && DateTime.UtcNow < deadline && !stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(PollInterval, stop.Token);
            }
            catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
            {
                break;
            }

            if (database.LastSequence > next)
            {
                (page, next, more) = await CollectAsync(feed, visibility, next, (int)max, context.RequestAborted);
            }
        }

        var last = await feed.LastSequenceAsync(context.RequestAborted);
        return TypedResults.Ok(new ChangesPage(page, next, Math.Max(last, next), more));
    }

    /// <summary>
    /// Up to <paramref name="max"/> visible changes after <paramref name="after"/>; <c>Next</c> is the sequence of the last
    /// change looked at (visible or skipped), <c>More</c> whether changes beyond it were already waiting. At most
    /// <see cref="ScanBudget"/> changes are looked at per request, so a caller who sees little of a busy feed gets an
    /// answer (possibly empty, with <c>more</c>) instead of a scan of the whole feed.
    /// </summary>
    private static async Task<(List<ChangeItem> Page, long Next, bool More)> CollectAsync(IChangeFeed feed, ChangeVisibility visibility, long after, int max,
        CancellationToken cancellationToken)
    {
        var page = new List<ChangeItem>(Math.Min(max, 1000));
        var cursor = after;
        var scanned = 0;
        while (true)
        {
            var batch = await feed.ReadAsync(cursor, max + 1, cancellationToken);
            foreach (var r in batch)
            {
                if (page.Count == max || scanned == ScanBudget)
                {
                    return (page, cursor, true);
                }

                cursor = r.Sequence;
                scanned++;
                if (await visibility.VisibleAsync(r, cancellationToken))
                {
                    page.Add(new ChangeItem(r.Sequence, r.Entity, r.EntityId, r.Operation, r.Version, r.At, r.Actor));
                }
            }

            if (batch.Count < max + 1)
            {
                return (page, cursor, false);
            }
        }
    }

    /// <summary>Changes looked at per request at most (visible or not).</summary>
    internal const int ScanBudget = 20_000;

    private static ProblemHttpResult Problem(string field, string message) => TypedResults.Problem(
        ApiProblems.Build(StatusCodes.Status400BadRequest, "Bad request", $"{field}: {message}", [new ApiFieldError(field, message)]));

    private static bool TryParse(string? text, long fallback, out long value)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            value = fallback;
            return true;
        }

        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }
}

/// <summary>Which changes one caller may see: the entity's read filter, and the record's owner as of the change.</summary>
internal sealed class ChangeVisibility(AccessContext access, IAuditLog audit)
{
    private readonly Dictionary<string, QueryFilter> _filters = new(StringComparer.Ordinal);
    private readonly Dictionary<(string, string), IReadOnlyList<AuditEntry>> _histories = [];

    public async ValueTask<bool> VisibleAsync(ChangeRecord change, CancellationToken cancellationToken)
    {
        if (!await RecordVisibleAsync(change.Entity, change.EntityId, change, cancellationToken))
        {
            return false;
        }

        if (!string.Equals(change.Entity, EntityNames.Consent, StringComparison.OrdinalIgnoreCase) || FilterOf(EntityNames.Customer).All)
        {
            return true;
        }

        // A consent entry has no owner: the caller must also read the entry's customer as of the change (the rule of the
        // API, write enforcement and webhooks), else the feed would list entries of customers it cannot see.
        var customerId = OwnerAt(await HistoryAsync(change.Entity, change.EntityId, cancellationToken), change, "customerId");
        return customerId is not null
               && await RecordVisibleAsync(EntityNames.Customer, customerId, change with { Operation = ChangeOperation.Update }, cancellationToken);
    }

    private QueryFilter FilterOf(string entity)
    {
        if (!_filters.TryGetValue(entity, out var filter))
        {
            _filters[entity] = filter = access.Filter(entity);
        }

        return filter;
    }

    private async ValueTask<IReadOnlyList<AuditEntry>> HistoryAsync(string entity, string id, CancellationToken cancellationToken)
    {
        var key = (entity, id);
        if (!_histories.TryGetValue(key, out var history))
        {
            _histories[key] = history = await audit.ForEntityAsync(entity, id, cancellationToken);
        }

        return history;
    }

    /// <summary>May the caller read record <paramref name="id"/> of <paramref name="entity"/> as it was at <paramref name="change"/>?</summary>
    private async ValueTask<bool> RecordVisibleAsync(string entity, string id, ChangeRecord change, CancellationToken cancellationToken)
    {
        var filter = FilterOf(entity);
        if (filter.All || filter.IsEmpty)
        {
            return filter.All;
        }

        if (filter.SharedIds.Contains(id))
        {
            return true;
        }

        var history = await HistoryAsync(entity, id, cancellationToken);
        // A plugin entity names its owner field itself (IPluginBuilder.DeclareEntity, null = none); core entities use "owner".
        var ownerField = access.Snapshot.DeclaredEntities.TryGetValue(entity, out var declared) ? declared.OwnerField : "owner";
        return filter.Matches(id, OwnerAt(history, change, ownerField));
    }

    /// <summary>
    /// The record's owner as of <paramref name="change"/>: after it for a create or update (who holds the record now
    /// sees the change that gave it to them), before it for a delete.
    /// </summary>
    internal static string? OwnerAt(IReadOnlyList<AuditEntry> history, ChangeRecord change, string? ownerField = "owner")
    {
        if (ownerField is null)
        {
            return null;   // a declared entity without an owner field: its records belong to the root unit
        }

        string? owner = null;
        foreach (var entry in history)
        {
            if (entry.Sequence > change.Sequence)
            {
                break;
            }

            foreach (var field in entry.Changes)
            {
                // Audit field names follow the stored document ("Owner" for core records): compared ignoring case.
                if (string.Equals(field.Field, ownerField, StringComparison.OrdinalIgnoreCase))
                {
                    owner = entry.Sequence == change.Sequence && change.Operation == ChangeOperation.Delete ? Text(field.Before) : Text(field.After);
                }
            }
        }

        return owner;
    }

    private static string? Text(string? json) =>
        json is null ? null : JsonSerializer.Deserialize<string?>(json);
}
