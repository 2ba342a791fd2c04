using System.Globalization;
using CrmEngine.Abstractions.Store;
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

/// <summary><c>GET /api/changes?since=&amp;limit=&amp;wait=</c>: the change feed for synchronising clients (read scope).</summary>
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
        var records = await feed.ReadAsync(after, (int)max + 1, stop.Token);
        while (records.Count == 0 && DateTime.UtcNow < deadline && !stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(PollInterval, stop.Token);
            }
            catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
            {
                break;
            }

            if (database.LastSequence > after)
            {
                records = await feed.ReadAsync(after, (int)max + 1, context.RequestAborted);
            }
        }

        var page = records.Take((int)max).Select(r => new ChangeItem(r.Sequence, r.Entity, r.EntityId, r.Operation, r.Version, r.At, r.Actor)).ToList();
        var next = page.Count > 0 ? page[^1].Sequence : after;
        var last = await feed.LastSequenceAsync(context.RequestAborted);
        return TypedResults.Ok(new ChangesPage(page, next, Math.Max(last, next), records.Count > max));
    }

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
