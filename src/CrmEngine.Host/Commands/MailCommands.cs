using System.CommandLine;
using CrmEngine.Core.Storage;
using CrmEngine.Host.Control;
using CrmEngine.Host.Hosting;
using CrmEngine.Mail;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;

namespace CrmEngine.Host.Commands;

/// <summary>
/// <c>crm mail list|show|retry</c>: the outbox. While the engine runs they ask it over the control channel (the process
/// that owns the database, so a retry wakes its sender at once); when it is stopped they open the database directly
/// (a retried message then goes at the next start).
/// </summary>
internal static class MailCommands
{
    public static Command Mail()
    {
        var mail = new Command("mail", "The mail outbox: list messages by state, show one, send a failed one again.");

        var state = new Option<string?>("--state") { Description = "pending, sending, retrying, sent, failed or suppressed." };
        var limit = new Option<int?>("--limit") { Description = "At most this many messages (default 100, at most 1000)." };
        var after = new Option<string?>("--after") { Description = "Paging: messages after this id." };
        var json = new Option<bool>("--json") { Description = "One JSON array (every field, Message-Id and interrupted attempts included) for scripts." };
        var list = new Command("list", "Messages in creation order with state, attempts, template, recipient and the last error or reason.") { state, limit, after, json };
        list.TreatUnmatchedTokensAsErrors = false;
        list.SetAction((parse, ct) => RunAsync(parse, ct, async (remote, local) =>
        {
            var rows = remote is not null
                ? await remote.GetAsync<List<MailMessageInfo>>($"mail/messages?state={Uri.EscapeDataString(parse.GetValue(state) ?? "")}" +
                                                              $"&after={Uri.EscapeDataString(parse.GetValue(after) ?? "")}" +
                                                              (parse.GetValue(limit) is { } l ? $"&limit={l}" : ""), ct)
                : (List<MailMessageInfo>)Body(local!.List(parse.GetValue(state), parse.GetValue(limit), parse.GetValue(after)));
            Console.Write(parse.GetValue(json)
                ? System.Text.Json.JsonSerializer.Serialize(rows, ControlJson.Options) + Environment.NewLine
                : MailAdministration.FormatList(rows));
        }));
        mail.Subcommands.Add(list);

        var showId = new Argument<string>("id") { Description = "The message id (see crm mail list)." };
        var show = new Command("show", "One message: state, attempts, Message-Id, last error or server reply, the model snapshot.") { showId };
        show.TreatUnmatchedTokensAsErrors = false;
        show.SetAction((parse, ct) => RunAsync(parse, ct, async (remote, local) =>
        {
            var id = parse.GetValue(showId)!;
            var message = remote is not null
                ? await remote.GetAsync<MailMessageInfo>($"mail/messages/{Uri.EscapeDataString(id)}", ct)
                : (MailMessageInfo)Body(local!.Show(id));
            Console.Write(MailAdministration.FormatMessage(message));
        }));
        mail.Subcommands.Add(show);

        var retryId = new Argument<string>("id") { Description = "The message id (see crm mail list --state failed)." };
        var retry = new Command("retry", "Sends a failed or retrying message again now (attempts start again; same Message-Id).") { retryId };
        retry.TreatUnmatchedTokensAsErrors = false;
        retry.SetAction((parse, ct) => RunAsync(parse, ct, async (remote, local) =>
        {
            var id = parse.GetValue(retryId)!;
            var message = remote is not null
                ? await remote.PostAsync<object, MailMessageInfo>($"mail/messages/{Uri.EscapeDataString(id)}/retry", new { }, ct)
                : (MailMessageInfo)Body(await local!.RetryAsync(id));
            Console.WriteLine($"retry: message {message.Id} is now {message.State}{(remote is null ? " (it is sent when the engine starts)" : "")}");
        }));
        mail.Subcommands.Add(retry);
        return mail;
    }

    /// <summary>The control channel's mail routes (used by the verbs above while the engine runs).</summary>
    public static void MapControl(IEndpointRouteBuilder app, MailAdministration mail)
    {
        app.MapGet("/mail/messages", (string? state, int? limit, string? after) => Answer(mail.List(state, limit, after)));
        app.MapGet("/mail/messages/{id}", (string id) => Answer(mail.Show(id)));
        app.MapPost("/mail/messages/{id}/retry", async (string id) => Answer(await mail.RetryAsync(id)));
    }

    private static IResult Answer(MailAnswer answer) => answer.Error is null
        ? Results.Json(answer.Body, ControlJson.Options, statusCode: answer.Status)
        : Results.Json(new ControlError(answer.Error), ControlJson.Options, statusCode: answer.Status);

    private static object Body(MailAnswer answer) =>
        answer.Error is null ? answer.Body! : throw new CommandRefusedException(answer.Error, answer.Status == 400 ? ExitCodes.Usage : ExitCodes.Refused);

    private static async Task<int> RunAsync(ParseResult parse, CancellationToken ct, Func<ControlClient?, MailAdministration?, Task> work)
    {
        var crm = CrmCommandLine.LoadConfiguration(parse);
        var endpoint = ControlEndpoint.From(crm.Root, crm.ContentRoot);
        if (endpoint.Enabled && await endpoint.IsListeningAsync(ct))
        {
            using var client = new ControlClient(endpoint, TimeSpan.FromSeconds(30));
            await work(client, null);
            return ExitCodes.Ok;
        }

        var store = AdminCommands.StoreOptionsOf(crm);
        var live = CrmDatabase.ResolveFilePath(store, crm.ContentRoot);
        if (!File.Exists(live))
        {
            throw new CommandRefusedException($"no database at {live}: no mail yet (check Store:DataDirectory and --content-root).");
        }

        if (InstanceLock.IsHeld(store.DataDirectory, out var holder) || CrmDatabase.IsInUse(live))
        {
            throw new CommandRefusedException($"the database {live} is in use by another process{holder} but no service answers on {endpoint}; " +
                                              "enable the control channel (Host:ControlEnabled=true) or stop that process.");
        }

        var options = new MailOptions();
        crm.Root.GetSection(MailOptions.Section).Bind(options);
        using var db = new CrmDatabase(store, contentRoot: crm.ContentRoot);
        await work(null, MailAdministration.Open(db, options));
        return ExitCodes.Ok;
    }
}
