using System.Globalization;
using System.Text.Json;
using CrmEngine.Api;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using CrmEngine.Security;

namespace CrmEngine.Webhooks;

/// <summary>A subscription in API answers. The secret is only in the answer to its creation.</summary>
internal sealed record SubscriptionView(string Id, string Url, IReadOnlyList<string> Events, bool Active, string? Description,
    DateTimeOffset CreatedAt, string CreatedBy, DateTimeOffset UpdatedAt, string? User)
{
    public static SubscriptionView Of(WebhookSubscription s) => new(s.Id, s.Url, s.Events, s.Active, s.Description, s.CreatedAt, s.CreatedBy, s.UpdatedAt, s.User);
}

internal sealed record CreatedSubscriptionView(string Id, string Url, IReadOnlyList<string> Events, bool Active, string? Description,
    DateTimeOffset CreatedAt, string CreatedBy, DateTimeOffset UpdatedAt, string? User, string Secret);

internal sealed record DeliveryView(string Id, long Sequence, string Event, string Entity, string EntityId, string State, int Attempts,
    int? LastStatusCode, string? LastError, DateTimeOffset? NextAttemptAt, DateTimeOffset CreatedAt, DateTimeOffset? LastAttemptAt,
    DateTimeOffset? DeliveredAt)
{
    public static DeliveryView Of(WebhookDelivery d) => new(d.Id, d.Sequence, d.Event, d.Entity, d.EntityId, d.State.ToString().ToLowerInvariant(),
        d.Attempts, d.LastStatusCode, d.LastError, d.NextAttemptAt, d.CreatedAt, d.LastAttemptAt, d.DeliveredAt);
}

internal sealed record ListView<T>(IReadOnlyList<T> Items, string? Next);

internal sealed record PingView(string DeliveryId, bool Delivered, int? StatusCode, string? Error);

/// <summary>
/// <c>/api/webhooks</c>: manage subscriptions, read delivery history, redeliver parked deliveries, ping a receiver.
/// Admin scope for all of it: a subscription decides where customer data goes. A subscription belongs to the user it
/// receives as (the creating key's or token's user; <c>sys-api</c> for a key without one): a caller sees and manages only
/// its own, unless its user may administer security (<c>security: write at all</c>, the administrator role). Another
/// user's subscription answers the same 404 as an id nobody has.
/// </summary>
internal sealed class WebhookEndpoints(WebhookStore store, WebhookDispatcher dispatcher, TimeProvider time, WebhookOptions options) : IApiEndpointModule
{
    private const int MaxPage = 500;

    /// <summary>The claim naming the user an API key or token acts as (absent: a key without a user = sys-api).</summary>
    internal const string UserClaim = "crm:user";

    private readonly TargetPolicy _targets = TargetPolicy.From(options);

    public void Map(IEndpointRouteBuilder api, IEndpointRouteBuilder root)
    {
        var group = api.MapGroup("/webhooks").RequireAuthorization(ApiPolicies.Admin).WithTags("Webhooks");
        group.MapPost("/", (Delegate)CreateAsync).WithName("CreateWebhook").Accepts<JsonElement>("application/json");
        group.MapGet("/", (Delegate)ListAsync).WithName("ListWebhooks");
        group.MapGet("/{id}", GetAsync).WithName("GetWebhook");
        group.MapMethods("/{id}", ["PATCH"], UpdateAsync).WithName("UpdateWebhook").Accepts<JsonElement>("application/json");
        group.MapDelete("/{id}", DeleteAsync).WithName("DeleteWebhook");
        group.MapGet("/{id}/deliveries", DeliveriesAsync).WithName("ListWebhookDeliveries");
        group.MapGet("/{id}/deliveries/{deliveryId}", DeliveryAsync).WithName("GetWebhookDelivery");
        group.MapPost("/{id}/deliveries/{deliveryId}/retry", RetryAsync).WithName("RetryWebhookDelivery");
        group.MapPost("/{id}/ping", PingAsync).WithName("PingWebhook");
    }

    private async Task<IResult> CreateAsync(HttpContext context)
    {
        var (body, problem) = await ReadBodyAsync(context);
        if (problem is not null)
        {
            return problem;
        }

        var input = SubscriptionInput.Read(body, create: true, _targets);
        if (input.Errors.Count > 0)
        {
            return Invalid("The subscription is not valid", input.Errors);
        }

        var (s, secret) = await store.CreateAsync(input.Url!, input.Events!, input.Secret, input.Active ?? true, input.Description, ActorOf(context),
            context.User.FindFirst(UserClaim)?.Value);
        dispatcher.Wake();
        return TypedResults.Created($"/api/webhooks/{s.Id}",
            new CreatedSubscriptionView(s.Id, s.Url, s.Events, s.Active, s.Description, s.CreatedAt, s.CreatedBy, s.UpdatedAt, s.User, secret));
    }

    private async Task<Ok<ListView<SubscriptionView>>> ListAsync(HttpContext context)
    {
        var caller = await WebhookCaller.OfAsync(context);
        return TypedResults.Ok(new ListView<SubscriptionView>(store.List().Where(caller.Sees).Select(SubscriptionView.Of).ToList(), null));
    }

    private async Task<Results<Ok<SubscriptionView>, ProblemHttpResult>> GetAsync(string id, HttpContext context) =>
        await VisibleAsync(id, context) is { } s ? TypedResults.Ok(SubscriptionView.Of(s)) : NotFound(id);

    /// <summary>The subscription when the caller may manage it; null (answered 404) when it does not exist or is another user's.</summary>
    private async Task<WebhookSubscription?> VisibleAsync(string id, HttpContext context) =>
        store.Get(id) is { } s && (await WebhookCaller.OfAsync(context)).Sees(s) ? s : null;

    private async Task<IResult> UpdateAsync(string id, HttpContext context)
    {
        if (await VisibleAsync(id, context) is null)
        {
            return NotFound(id);
        }

        var (body, problem) = await ReadBodyAsync(context);
        if (problem is not null)
        {
            return problem;
        }

        var input = SubscriptionInput.Read(body, create: false, _targets);
        if (input.Errors.Count > 0)
        {
            return Invalid("The change is not valid", input.Errors);
        }

        var patch = new SubscriptionPatch(input.Url, input.Events, input.Secret, input.Active,
            input.HasDescription ? input.Description ?? "" : null);
        var updated = await store.UpdateAsync(id, patch);
        if (updated is null)
        {
            return NotFound(id);
        }

        dispatcher.Wake();
        return TypedResults.Ok(SubscriptionView.Of(updated));
    }

    private async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(string id, HttpContext context) =>
        await VisibleAsync(id, context) is not null && await store.DeleteAsync(id) ? TypedResults.NoContent() : NotFound(id);

    private async Task<IResult> DeliveriesAsync(string id, string? state, int? limit, long? before, HttpContext context)
    {
        if (await VisibleAsync(id, context) is null)
        {
            return NotFound(id);
        }

        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        DeliveryState? filter = null;
        if (state is not null)
        {
            if (Enum.TryParse<DeliveryState>(state, ignoreCase: true, out var parsed) && !int.TryParse(state, out _))
            {
                filter = parsed;
            }
            else
            {
                errors["state"] = ["must be pending, retrying, delivered, parked or skipped."];
            }
        }

        if (limit is < 1 or > MaxPage)
        {
            errors["limit"] = [$"must be between 1 and {MaxPage}."];
        }

        if (before is < 1)
        {
            errors["before"] = ["must be a sequence number (the 'next' value of the previous page)."];
        }

        if (errors.Count > 0)
        {
            return Invalid("The query is not valid", errors);
        }

        var take = limit ?? 100;
        var items = store.History(id, filter, take, before);
        var next = items.Count == take ? items[^1].Sequence.ToString(CultureInfo.InvariantCulture) : null;
        return TypedResults.Ok(new ListView<DeliveryView>(items.Select(DeliveryView.Of).ToList(), next));
    }

    private async Task<Results<Ok<DeliveryView>, ProblemHttpResult>> DeliveryAsync(string id, string deliveryId, HttpContext context) =>
        await VisibleAsync(id, context) is null ? NotFound(id)
        : store.Delivery(deliveryId) is { } d && d.SubscriptionId == id
            ? TypedResults.Ok(DeliveryView.Of(d))
            : TypedResults.Problem(statusCode: 404, title: ApiProblems.Title(404), detail: $"Subscription '{id}' has no delivery '{deliveryId}'.");

    private async Task<Results<Accepted<DeliveryView>, ProblemHttpResult>> RetryAsync(string id, string deliveryId, HttpContext context)
    {
        if (await VisibleAsync(id, context) is null)
        {
            return NotFound(id);
        }

        var security = context.RequestServices.GetService<SecurityDirectory>();
        var (outcome, reason) = await store.RedeliverAsync(id, deliveryId, user => SubscriberAccess.ForAsync(security, user, context.RequestAborted));
        switch (outcome)
        {
            case RetryOutcome.Refused:
                return TypedResults.Problem(statusCode: 409, title: ApiProblems.Title(409),
                    detail: $"Delivery '{deliveryId}' was not sent again: {reason}. It is now skipped.");
            case RetryOutcome.Requeued:
                dispatcher.Wake();
                return TypedResults.Accepted($"/api/webhooks/{id}/deliveries/{deliveryId}", DeliveryView.Of(store.Delivery(deliveryId)!));
            case RetryOutcome.NotParked:
                var current = store.Delivery(deliveryId)!;
                return TypedResults.Problem(statusCode: 409, title: ApiProblems.Title(409),
                    detail: $"Delivery '{deliveryId}' is {current.State.ToString().ToLowerInvariant()}: only a parked delivery can be redelivered.");
            default:
                return TypedResults.Problem(statusCode: 404, title: ApiProblems.Title(404), detail: $"Subscription '{id}' has no delivery '{deliveryId}'.");
        }
    }

    /// <summary>Sends a signed <c>ping</c> event now and answers what the receiver said (not stored, not retried).</summary>
    private async Task<Results<Ok<PingView>, ProblemHttpResult>> PingAsync(string id, HttpContext context, CancellationToken cancellationToken)
    {
        if (await VisibleAsync(id, context) is null || store.Target(id) is not { } target)
        {
            return NotFound(id);
        }

        var deliveryId = "ping-" + Guid.CreateVersion7().ToString("N");
        var body = JsonSerializer.Serialize(new
        {
            deliveryId,
            sequence = 0,
            @event = "ping",
            subscriptionId = id,
            at = time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture),
        }, WebhookJson.Compact);
        var result = await dispatcher.SendAsync(target.Url, target.Secret, "ping", deliveryId, body, cancellationToken);
        return TypedResults.Ok(new PingView(deliveryId, result.Delivered, result.StatusCode, result.Error));
    }

    /// <summary>400 in the API's problem shape: <c>errors</c> lists field and message, <c>field</c> names the first.</summary>
    private static IResult Invalid(string title, Dictionary<string, string[]> errors)
    {
        var list = errors.SelectMany(e => e.Value.Select(m => new ApiFieldError(e.Key, m))).ToList();
        return ApiProblems.Create(400, ApiProblems.Title(400), title + ": " + string.Join("; ", list.Select(e => $"{e.Field}: {e.Message}")), list);
    }

    private static ProblemHttpResult NotFound(string id) =>
        TypedResults.Problem(statusCode: 404, title: ApiProblems.Title(404), detail: $"There is no webhook subscription '{id}'.");

    /// <summary>Who is calling, as the API's authentication names it; kept on the subscription for later access rules.</summary>
    private static string ActorOf(HttpContext context) =>
        context.User.Identity?.Name is { Length: > 0 } name ? name : "unknown";

    private static async Task<(JsonElement Body, ProblemHttpResult? Problem)> ReadBodyAsync(HttpContext context)
    {
        if (context.Request.ContentType is not { } type || !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            return (default, TypedResults.Problem(statusCode: 415, title: ApiProblems.Title(415),
                detail: "The body must be JSON with Content-Type: application/json."));
        }

        try
        {
            using var doc = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            return (doc.RootElement.Clone(), null);
        }
        catch (JsonException ex)
        {
            return (default, TypedResults.Problem(statusCode: 400, title: "Invalid JSON", detail: "The body is not valid JSON: " + ex.Message));
        }
    }
}

/// <summary>
/// Who calls the webhook endpoints: the user the key or token acts as (<c>sys-api</c> for a key without one) and whether
/// that user manages every subscription (may administer security: <c>security: write at all</c>, the administrator role;
/// the scope-only keys of a store whose access model has no users yet; every caller when the engine has no access model).
/// </summary>
internal readonly record struct WebhookCaller(string User, bool ManagesAll)
{
    /// <summary>A subscription belongs to the user it receives as; one made without a user receives (and belongs) as sys-api.</summary>
    public bool Sees(WebhookSubscription subscription) =>
        ManagesAll || string.Equals(subscription.User ?? SecurityAdministration.SystemUsers.Api, User, StringComparison.Ordinal);

    public static async Task<WebhookCaller> OfAsync(HttpContext context)
    {
        if (context.RequestServices.GetService<SecurityDirectory>() is null)
        {
            return new WebhookCaller(context.CrmUserId(), true);
        }

        var access = await context.CrmAccessAsync();
        return new WebhookCaller(access.UserId, access.CanAdministerSecurity);
    }
}
