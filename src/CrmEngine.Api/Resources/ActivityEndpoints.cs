using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
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

        // Activities the caller may read, judged on the stored document as the index is read (an activity can be owned by
        // someone else than the customer's owner), so pages, cursors and next links are of visible activities only.
        var access = await context.CrmAccessAsync();
        var visible = access.Filter(EntityNames.Activity);
        Func<IndexHit, bool>? keep = visible.All ? null : hit => visible.Matches(hit.Id, hit.Owner);
        var database = context.RequestServices.GetRequiredService<CrmDatabase>();
        // Each activity without the fields hidden from the caller, as GET /api/activities answers it.
        var mask = access.Fields(EntityNames.Activity);
        object Shown(IndexHit hit) => RecordAccess.Shape(mask, database.Mapper.ToObject<Activity>(hit.Document));
        // Both orders are one ordered index range of this customer, read in chunks until the page (plus one) is found:
        // newest = the customer look-up backwards (ids grow with creation); due = the activities' due sort key. The
        // cursor is the position in that order, so an activity that does not move is neither skipped nor repeated
        // while others are added.
        if (order == Newest)
        {
            var newest = IndexReads.ByKey(database, CoreEntities.Activity, IndexedField.CustomerId, customer.Id, page.After, descending: true, keep, Chunk(page.Limit))
                .Take(page.Limit + 1)
                .ToList();
            return Paging.Respond(context, newest, page.Limit, h => h.Id, Shown);
        }

        var due = IndexReads.ActivitiesByDue(database, customer.Id, page.After, keep, Chunk(page.Limit));
        if (due is null)
        {
            return ResourceProblems.BadRequest(Paging.AfterParameter, "is not a cursor of this timeline; use the next link of the previous page");
        }

        var fetched = due.Take(page.Limit + 1).ToList();
        return Paging.Respond(context, fetched, page.Limit, IndexReads.ActivityDueCursor, Shown);
    }

    /// <summary>Documents per index read: a page and its look-ahead in one read when nothing is filtered out.</summary>
    private static int Chunk(int limit) => Math.Max(limit + 2, 64);
}
