using System.CommandLine;
using System.Globalization;
using System.Text;
using CrmEngine.Host.Control;
using CrmEngine.Webhooks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;

namespace CrmEngine.Host.Commands;

/// <summary>
/// <c>crm webhooks list|create|delete|deliveries|redeliver</c>: the subscriptions and their delivery history, through the
/// running engine's control channel or, when it is stopped, directly on the database (<see cref="ControlOrDatabase"/>).
/// The same checks as <c>POST /api/webhooks</c>; the secret is printed once by create.
/// </summary>
internal static class WebhooksCommands
{
    public sealed record CreateRequest(string Url, string[] Events, string? Description, string? User = null);

    public static Command Webhooks()
    {
        var command = new Command("webhooks", "Outbound webhook subscriptions and their deliveries (see docs/webhooks.md).");

        var list = new Command("list", "Every subscription: id, active, events, url (never the secret).");
        list.TreatUnmatchedTokensAsErrors = false;
        list.SetAction((parse, ct) => RunAsync(parse, ct,
            remote => remote.GetAsync<TextAnswer>("webhooks", ct),
            local => Task.FromResult(ListText(local))));
        command.Subcommands.Add(list);

        var url = new Option<string>("--url") { Description = "Where deliveries are POSTed (http or https; a public address unless Webhooks:AllowPrivateTargets).", Required = true };
        var events = new Option<string[]>("--events") { Description = "Event patterns, for example customer.* order.created or * (several, or comma-separated).", Required = true, AllowMultipleArgumentsPerToken = true };
        var description = new Option<string?>("--description") { Description = "A note for operators." };
        var asUser = new Option<string?>("--as")
        {
            Description = "The CRM user the subscription receives as: only changes of records they may read, without fields hidden from them. Without it: sys-api.",
        };
        var create = new Command("create", "Creates a subscription and prints its signing secret ONCE.") { url, events, description, asUser };
        create.TreatUnmatchedTokensAsErrors = false;
        create.SetAction((parse, ct) =>
        {
            var request = new CreateRequest(parse.GetValue(url)!, parse.GetValue(events) ?? [], parse.GetValue(description), parse.GetValue(asUser));
            return RunAsync(parse, ct, remote => remote.PostAsync<CreateRequest, TextAnswer>("webhooks", request, ct), local => CreateAsync(local, request));
        });
        command.Subcommands.Add(create);

        var id = new Argument<string>("id") { Description = "The subscription id (wh_...)." };
        var delete = new Command("delete", "Removes a subscription and its delivery history.") { id };
        delete.TreatUnmatchedTokensAsErrors = false;
        delete.SetAction((parse, ct) => RunAsync(parse, ct,
            remote => remote.PostAsync<object, TextAnswer>($"webhooks/{Uri.EscapeDataString(parse.GetValue(id)!)}/delete", new { }, ct),
            local => DeleteAsync(local, parse.GetValue(id)!)));
        command.Subcommands.Add(delete);

        var state = new Option<string?>("--state") { Description = "Only pending, retrying, delivered or parked deliveries." };
        var limit = new Option<int?>("--limit") { Description = "At most this many, newest first (1-500, default 50)." };
        var deliveries = new Command("deliveries", "A subscription's deliveries, newest first: state, tries, last status and error.") { id, state, limit };
        deliveries.TreatUnmatchedTokensAsErrors = false;
        deliveries.SetAction((parse, ct) => RunAsync(parse, ct,
            remote => remote.GetAsync<TextAnswer>($"webhooks/{Uri.EscapeDataString(parse.GetValue(id)!)}/deliveries?state={Uri.EscapeDataString(parse.GetValue(state) ?? "")}&limit={parse.GetValue(limit) ?? 50}", ct),
            local => Task.FromResult(DeliveriesText(local, parse.GetValue(id)!, parse.GetValue(state), parse.GetValue(limit) ?? 50))));
        command.Subcommands.Add(deliveries);

        var delivery = new Argument<string>("delivery") { Description = "The delivery id (from crm webhooks deliveries)." };
        var redeliver = new Command("redeliver", "Puts a parked delivery back in line with a fresh set of tries.") { id, delivery };
        redeliver.TreatUnmatchedTokensAsErrors = false;
        redeliver.SetAction((parse, ct) => RunAsync(parse, ct,
            remote => remote.PostAsync<object, TextAnswer>($"webhooks/{Uri.EscapeDataString(parse.GetValue(id)!)}/deliveries/{Uri.EscapeDataString(parse.GetValue(delivery)!)}/redeliver", new { }, ct),
            local => RedeliverAsync(local, parse.GetValue(id)!, parse.GetValue(delivery)!)));
        command.Subcommands.Add(redeliver);
        return command;
    }

    /// <summary>Control-channel routes used by the verbs while the engine runs.</summary>
    public static void MapControl(WebApplication app, WebhookAdministration webhooks)
    {
        app.MapGet("/webhooks", () => Json(ListText(webhooks)));
        app.MapPost("/webhooks", async (CreateRequest request) => Json(await CreateAsync(webhooks, request)));
        app.MapPost("/webhooks/{id}/delete", async (string id) => Json(await DeleteAsync(webhooks, id)));
        app.MapGet("/webhooks/{id}/deliveries", (string id, string? state, int? limit) => Json(DeliveriesText(webhooks, id, state, limit ?? 50)));
        app.MapPost("/webhooks/{id}/deliveries/{delivery}/redeliver", async (string id, string delivery) => Json(await RedeliverAsync(webhooks, id, delivery)));
    }

    private static IResult Json(TextAnswer answer) => Results.Json(answer, ControlJson.Options);

    private static TextAnswer ListText(WebhookAdministration webhooks)
    {
        var all = webhooks.List();
        if (all.Count == 0)
        {
            return new TextAnswer("no webhook subscriptions (crm webhooks create --url <url> --events customer.*)\n", true);
        }

        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"{"ID",-36} {"ACTIVE",-6} {"USER",-12} {"EVENTS",-30} URL");
        foreach (var s in all)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"{s.Id,-36} {(s.Active ? "yes" : "no"),-6} {s.User ?? "(sys-api)",-12} {string.Join(",", s.Events),-30} {s.Url}");
        }

        return new TextAnswer(text.ToString(), true);
    }

    private static async Task<TextAnswer> CreateAsync(WebhookAdministration webhooks, CreateRequest request)
    {
        try
        {
            var (s, secret) = await webhooks.CreateAsync(request.Url, request.Events, request.Description, "cli", string.IsNullOrWhiteSpace(request.User) ? null : request.User);
            return new TextAnswer(
                $"webhook subscription {s.Id} created for {string.Join(", ", s.Events)} -> {s.Url} (receives as {s.User ?? "sys-api"})\n" +
                $"signing secret (shown only this once; receivers verify X-Crm-Signature with it):\n{secret}\n", true);
        }
        catch (ArgumentException ex)
        {
            return new TextAnswer(ex.Message + "\n", false);
        }
    }

    private static async Task<TextAnswer> DeleteAsync(WebhookAdministration webhooks, string id) =>
        await webhooks.DeleteAsync(id)
            ? new TextAnswer($"webhook subscription {id} deleted with its delivery history\n", true)
            : NoSuchSubscription(id);

    private static TextAnswer DeliveriesText(WebhookAdministration webhooks, string id, string? state, int limit)
    {
        IReadOnlyList<WebhookDeliveryInfo>? items;
        try
        {
            items = webhooks.Deliveries(id, state, limit);
        }
        catch (ArgumentException ex)
        {
            return new TextAnswer(ex.Message + "\n", false);
        }

        if (items is null)
        {
            return NoSuchSubscription(id);
        }

        if (items.Count == 0)
        {
            return new TextAnswer($"no deliveries{(string.IsNullOrWhiteSpace(state) ? "" : " in state " + state)} for {id}\n", true);
        }

        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"{"DELIVERY",-56} {"EVENT",-18} {"STATE",-9} {"TRIES",5} {"STATUS",6}  LAST ERROR");
        foreach (var d in items)
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"{d.Id,-56} {d.Event,-18} {d.State,-9} {d.Attempts,5} {(d.LastStatusCode?.ToString(CultureInfo.InvariantCulture) ?? "-"),6}  {d.LastError ?? "-"}");
        }

        return new TextAnswer(text.ToString(), true);
    }

    private static async Task<TextAnswer> RedeliverAsync(WebhookAdministration webhooks, string id, string delivery) =>
        await webhooks.RedeliverAsync(id, delivery) switch
        {
            RedeliverOutcome.Requeued => new TextAnswer($"delivery {delivery} is back in line for {id}\n", true),
            RedeliverOutcome.NotParked => new TextAnswer($"delivery {delivery} is {webhooks.DeliveryState(delivery)}, not parked: only a parked delivery can be redelivered\n", false),
            _ => new TextAnswer($"subscription {id} has no delivery {delivery} (crm webhooks deliveries {id} lists them)\n", false),
        };

    private static TextAnswer NoSuchSubscription(string id) =>
        new($"no webhook subscription has the id '{id}' (crm webhooks list shows them)\n", false);

    private static Task<int> RunAsync(ParseResult parse, CancellationToken ct, Func<ControlClient, Task<TextAnswer>> remote, Func<WebhookAdministration, Task<TextAnswer>> local) =>
        ControlOrDatabase.RunAsync(parse, ct, remote, (crm, store) =>
        {
            var options = new WebhookOptions();
            crm.Root.GetSection(WebhookOptions.Section).Bind(options);
            return WebhookAdministration.OpenOffline(store, crm.ContentRoot, options);
        }, local);
}
