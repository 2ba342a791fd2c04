using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using CrmEngine.Api;
using CrmEngine.Mail.Unsubscribe;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CrmEngine.Mail;

/// <summary>
/// The outbox over HTTP: the PUBLIC one-click unsubscribe link at the root (<c>/unsubscribe?token=…</c>: GET and HEAD
/// show a confirmation page and change nothing, because link scanners fetch links; POST with a valid token withdraws the
/// consent, RFC 8058), and <c>/api/mail/messages</c> (list and show with read scope, retry with admin scope; each only for
/// the messages the caller may see, see <see cref="MailViewer"/>).
/// </summary>
internal sealed class MailEndpoints(MailAdministration administration, UnsubscribeService unsubscribe) : IApiEndpointModule
{
    private static readonly JsonSerializerOptions Json = CreateJson();

    private static JsonSerializerOptions CreateJson()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        options.Converters.Add(new JsonStringEnumConverter());
        return options;
    }

    public void Map(IEndpointRouteBuilder api, IEndpointRouteBuilder root)
    {
        root.MapMethods("/unsubscribe", [HttpMethods.Get, HttpMethods.Head], (Delegate)ConfirmAsync).ExcludeFromDescription();
        root.MapPost("/unsubscribe", (Delegate)UnsubscribeAsync).ExcludeFromDescription().DisableAntiforgery();

        // Every call sees only the messages of customers the caller may read (MailViewer); another's message is a 404.
        var messages = api.MapGroup("/mail/messages").WithTags("Mail");
        messages.MapGet("/", ListAsync)
            .RequireAuthorization(ApiPolicies.Read)
            .WithSummary("Outbox messages the caller may see, in creation order; filter by state (pending, sending, retrying, sent, failed, suppressed); follow the Link rel=next header (after=<id>).");
        messages.MapGet("/{id}", async (string id, HttpContext context) =>
                Answer(await administration.ShowAsync(id, await MailViewer.ForAsync(context), context.RequestAborted)))
            .RequireAuthorization(ApiPolicies.Read)
            .WithSummary("One outbox message with its state, attempts, last error or server reply and the model snapshot as the caller may see it.");
        messages.MapPost("/{id}/retry", async (string id, HttpContext context) =>
                Answer(await administration.RetryAsync(id, await MailViewer.ForAsync(context), context.RequestAborted)))
            .RequireAuthorization(ApiPolicies.Admin)
            .WithSummary("Sends a failed or retrying message the caller may see again now (attempts start again).");
    }

    private async Task<IResult> ListAsync(string? state, int? limit, string? after, HttpContext context)
    {
        var (answer, next) = await administration.ListAsync(state, limit, after, await MailViewer.ForAsync(context), context.RequestAborted);
        if (next is not null)
        {
            // A page can end early (the caller sees few of the messages read): continue after the last one read.
            var query = QueryString.Create([.. context.Request.Query.Where(q => q.Key != "after").SelectMany(q => q.Value.Select(v => KeyValuePair.Create(q.Key, v))),
                KeyValuePair.Create("after", (string?)next)]);
            context.Response.Headers.Append("Link", $"<{context.Request.PathBase}{context.Request.Path}{query}>; rel=\"next\"");
        }

        return Answer(answer);
    }

    private static IResult Answer(MailAnswer answer) =>
        answer.Error is null ? Results.Json(answer.Body, Json, statusCode: answer.Status) : Results.Problem(detail: answer.Error, statusCode: answer.Status);

    private async Task<IResult> ConfirmAsync(HttpContext context)
    {
        var token = context.Request.Query["token"].ToString();
        if (await unsubscribe.VerifyAsync(token) is not { } claim)
        {
            return Page(400, "Link not valid", "<p>This unsubscribe link is not valid (it may have been cut short or changed). Nothing was changed.</p>");
        }

        var purpose = WebUtility.HtmlEncode(claim.Purpose);
        var action = WebUtility.HtmlEncode("?token=" + Uri.EscapeDataString(token));
        return Page(200, "Unsubscribe",
            $"<p>Stop receiving e-mail about <strong>{purpose}</strong>?</p>" +
            $"<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">" +
            "<button type=\"submit\">Unsubscribe</button></form>" +
            "<p>Nothing changes until you press the button.</p>");
    }

    private async Task<IResult> UnsubscribeAsync(HttpContext context, CancellationToken cancellationToken)
    {
        var token = context.Request.Query["token"].ToString();
        if (token.Length == 0 && context.Request.HasFormContentType && context.Request.ContentLength is null or < 16_384)
        {
            var form = await context.Request.ReadFormAsync(cancellationToken);
            token = form["token"].ToString();
        }

        if (await unsubscribe.VerifyAsync(token) is not { } claim)
        {
            return Page(400, "Link not valid", "<p>This unsubscribe link is not valid (it may have been cut short or changed). Nothing was changed.</p>");
        }

        var purpose = WebUtility.HtmlEncode(claim.Purpose);
        return await unsubscribe.WithdrawAsync(claim, cancellationToken) switch
        {
            UnsubscribeOutcome.CustomerGone => Page(410, "Not on file", "<p>We no longer hold this address. Nothing was changed.</p>"),
            _ => Page(200, "Unsubscribed", $"<p>You will no longer receive e-mail about <strong>{purpose}</strong>.</p>"),
        };
    }

    private static IResult Page(int status, string title, string body) => Results.Content(
        $"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">" +
        $"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title></head>" +
        $"<body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\"><h1>{title}</h1>{body}</body></html>",
        "text/html; charset=utf-8", System.Text.Encoding.UTF8, status);
}
