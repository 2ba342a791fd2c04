using System.Globalization;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
using LiteDB;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CrmEngine.Api.Resources;

/// <summary><c>/api/activities</c> and the timeline of one customer, <c>/api/customers/{id}/timeline</c>.</summary>
internal sealed class ActivityEndpoints : IApiEndpointModule
{
    internal const string OrderParameter = "order";
    internal const string Newest = "newest";
    internal const string Due = "due";

    /// <summary>Activities are read from the customer index in slices of this size to build a timeline.</summary>
    private const int Slice = 1000;

    private readonly EntityResource<Activity> _activities = new("activities", "activity", "Activity", "Activities", s => s.Activities);

    public void Map(IEndpointRouteBuilder api, IEndpointRouteBuilder root)
    {
        _activities.Map(api);
        api.MapGet("/customers/{id}/timeline", TimelineAsync)
            .WithTags("Activities")
            .RequireAuthorization(ApiPolicies.Read)
            .WithName("GetCustomerTimeline")
            .WithSummary("The activities of one customer: order=newest (default, most recently recorded first) or order=due (by due time, else start time, earliest first; undated last); paged with limit and after.")
            .Produces<ResourcePage<Activity>>()
            .ProducesValidationProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound);
    }

    private static async Task<IResult> TimelineAsync(HttpContext context, string id)
    {
        if (!Paging.TryRead(context.Request, [], [OrderParameter], out var page, out var problem))
        {
            return problem!;
        }

        var order = context.Request.Query[OrderParameter].ToString();
        order = order.Length == 0 ? Newest : order.ToLowerInvariant();
        if (order is not (Newest or Due))
        {
            return ResourceProblems.BadRequest(OrderParameter, $"'{order}' is not an order: use {Newest} or {Due}");
        }

        var store = context.CrmStore();
        var (customer, missing) = await CustomerLookup.LoadAsync(context, store, id);
        if (customer is null)
        {
            return missing!;
        }

        // Activities the caller may read, selected as they are read (an activity can be owned by someone else than the customer's owner).
        var visible = (await context.CrmAccessAsync()).Filter(EntityNames.Activity);
        Func<Activity, bool> keep = visible.All ? _ => true : a => visible.Matches(a.Id, a.Owner);
        if (order == Newest)
        {
            // Newest first is id order backwards: one query on the customer index, sorted and cut by LiteDB, so only
            // the page is read into records (a customer with years of activities costs one page, not the whole list).
            var newest = NewestPage(context, customer.Id, page.After, page.Limit + 1, visible.All ? null : keep);
            return Paging.Respond(context, newest, page.Limit, a => a.Id, a => a);
        }

        // Due order needs the due/start time of every activity: a customer's activities are read whole and
        // sorted here. The cursor is the sort key of the last item, so an activity that does not move
        // is neither skipped nor repeated while others are added.
        var all = new List<Activity>();
        string? after = null;
        while (true)
        {
            var slice = await store.Activities.FindAsync(IndexedField.CustomerId, customer.Id, Slice, after, context.RequestAborted);
            all.AddRange(slice.Where(keep));
            if (slice.Count < Slice)
            {
                break;
            }

            after = slice[^1].Id;
        }

        var descending = order == Newest;
        Func<Activity, string> key = descending ? a => a.Id : DueKey;
        var sorted = all.Select(a => (Key: key(a), Activity: a))
            .Where(p => page.After is null || (descending
                ? string.CompareOrdinal(p.Key, page.After) < 0
                : string.CompareOrdinal(p.Key, page.After) > 0));
        sorted = descending ? sorted.OrderByDescending(p => p.Key, StringComparer.Ordinal) : sorted.OrderBy(p => p.Key, StringComparer.Ordinal);
        var fetched = sorted.Take(page.Limit + 1).ToList();
        return Paging.Respond(context, fetched, page.Limit, p => p.Key, p => p.Activity);
    }

    private static List<Activity> NewestPage(HttpContext context, string customerId, string? after, int take, Func<Activity, bool>? keep)
    {
        var database = context.RequestServices.GetRequiredService<CrmDatabase>();
        // Index entries are "customerId\u0001activityId": the customer's range, cut at the cursor (exclusive).
        var low = customerId + '\u0001';
        var high = after is null ? customerId + '\u0002' : low + after;
        var query = database.Database.GetCollection(CoreEntities.Activity.CollectionName).Query()
            .Where(BsonExpression.Create("$._ix." + IndexedField.CustomerId + "[*] ANY BETWEEN @0 AND @1", low, high))
            .OrderByDescending("_id");
        // With an access filter the range is read on until the page holds enough visible activities.
        return (keep is null ? query.Limit(take + 1) : query)
            .ToEnumerable()
            .Where(d => after is null || string.CompareOrdinal(d["_id"].AsString, after) < 0)
            .Select(d => database.Mapper.ToObject<Activity>(d))
            .Where(a => keep is null || keep(a))
            .Take(take)
            .ToList();
    }

    /// <summary>Sorts by due time, else start time (UTC), then id; activities with neither come last.</summary>
    internal static string DueKey(Activity activity) => (activity.DueAt ?? activity.StartAt) is { } at
        ? "0." + at.UtcTicks.ToString("D19", CultureInfo.InvariantCulture) + "." + activity.Id
        : "1." + activity.Id;
}
