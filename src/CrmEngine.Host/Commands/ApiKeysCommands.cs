using System.CommandLine;
using System.Globalization;
using System.Text;
using CrmEngine.Api.Keys;
using CrmEngine.Core.Storage;
using CrmEngine.Host.Control;
using CrmEngine.Host.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace CrmEngine.Host.Commands;

/// <summary>
/// <c>crm apikeys create|list|revoke</c>. While the engine runs they go through the control channel (local, owner-only:
/// the first key can be made without having one, and the running engine keeps the one open database); when it is
/// stopped they open the database directly. The key is printed once by create and never again.
/// </summary>
internal static class ApiKeysCommands
{
    public sealed record CreateRequest(string Name, string Scope, DateTimeOffset? Expires, string? User = null);

    public static Command ApiKeys()
    {
        var command = new Command("apikeys", "API keys for the HTTP API (stored only as hashes; scopes read, write, admin).");

        var name = new Option<string>("--name") { Description = "A name for the key (it appears in the audit log as apikey:<name>).", Required = true };
        var scope = new Option<string>("--scope") { Description = "read, write or admin (admin includes write, write includes read).", Required = true };
        var expires = new Option<string?>("--expires") { Description = "Optional expiry, for example 2027-01-31 or 2027-01-31T18:00:00Z." };
        var user = new Option<string?>("--user") { Description = "The user the key acts as (an active user; the audit log names them). Without it the key acts as the system user sys-api." };
        var create = new Command("create", "Creates a key and prints it ONCE; store it now.") { name, scope, expires, user };
        create.TreatUnmatchedTokensAsErrors = false;
        CreateRequest Request(ParseResult parse) =>
            new(parse.GetValue(name)!, parse.GetValue(scope)!, ParseExpiry(parse.GetValue(expires)), parse.GetValue(user) is { Length: > 0 } u ? u : null);
        create.SetAction((parse, ct) => RunAsync(parse, ct,
            remote => remote.PostAsync<CreateRequest, TextAnswer>("apikeys", Request(parse), ct),
            local => CreateAsync(local, Request(parse), ct)));
        command.Subcommands.Add(create);

        var list = new Command("list", "Every key: name, id, scope, user, created, expires, last used, revoked (never the key).");
        list.TreatUnmatchedTokensAsErrors = false;
        list.SetAction((parse, ct) => RunAsync(parse, ct,
            remote => remote.GetAsync<TextAnswer>("apikeys", ct),
            local => Task.FromResult(new TextAnswer(Format(local.List()), true))));
        command.Subcommands.Add(list);

        var which = new Argument<string>("key") { Description = "The key's name or id." };
        var revoke = new Command("revoke", "Revokes a key: requests with it get 401 from now on.") { which };
        revoke.TreatUnmatchedTokensAsErrors = false;
        revoke.SetAction((parse, ct) => RunAsync(parse, ct,
            remote => remote.PostAsync<object, TextAnswer>($"apikeys/{Uri.EscapeDataString(parse.GetValue(which)!)}/revoke", new { }, ct),
            local => RevokeAsync(local, parse.GetValue(which)!, ct)));
        command.Subcommands.Add(revoke);
        return command;
    }

    /// <summary>Control-channel routes used by the verbs while the engine runs.</summary>
    public static void MapControl(WebApplication app, ApiKeyAdministration keys)
    {
        app.MapPost("/apikeys", async (CreateRequest request, CancellationToken ct) => Results.Json(await CreateAsync(keys, request, ct), ControlJson.Options));
        app.MapGet("/apikeys", () => Results.Json(new TextAnswer(Format(keys.List()), true), ControlJson.Options));
        app.MapPost("/apikeys/{key}/revoke", async (string key, CancellationToken ct) => Results.Json(await RevokeAsync(keys, key, ct), ControlJson.Options));
    }

    private static async Task<TextAnswer> CreateAsync(ApiKeyAdministration keys, CreateRequest request, CancellationToken ct)
    {
        try
        {
            var created = await keys.CreateAsync(request.Name, ApiKeyAdministration.ParseScope(request.Scope), request.Expires, request.User, ct);
            var info = created.Info;
            return new TextAnswer(
                $"API key '{info.Name}' ({info.Id}, scope {Scope(info)}, acts as {info.OwnerUserId ?? "sys-api (no user)"}{(info.Expires is { } e ? $", expires {e:u}" : "")}):\n" +
                $"{created.Key}\n" +
                "It is shown only this once: store it now. Send it as the header X-Api-Key.\n", true);
        }
        catch (ArgumentException ex)
        {
            return new TextAnswer(ex.Message + "\n", false);
        }
    }

    private static async Task<TextAnswer> RevokeAsync(ApiKeyAdministration keys, string key, CancellationToken ct)
    {
        var revoked = await keys.RevokeAsync(key, ct);
        return revoked is null
            ? new TextAnswer($"no API key has the name or id '{key}' (crm apikeys list shows them)\n", false)
            : new TextAnswer($"API key '{revoked.Name}' ({revoked.Id}) revoked at {revoked.Revoked:u}\n", true);
    }

    private static string Scope(ApiKeyInfo key) => key.Scope.ToString().ToLowerInvariant();

    private static string Format(IReadOnlyList<ApiKeyInfo> keys)
    {
        if (keys.Count == 0)
        {
            return "no API keys (crm apikeys create --name <name> --scope read|write|admin)\n";
        }

        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"{"NAME",-24} {"ID",-21} {"SCOPE",-6} {"USER",-16} {"CREATED",-20} {"EXPIRES",-20} {"LAST USED",-20} REVOKED");
        foreach (var k in keys)
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"{k.Name,-24} {k.Id,-21} {Scope(k),-6} {k.OwnerUserId ?? "-",-16} {k.Created:u} {(k.Expires is { } e ? e.ToString("u", CultureInfo.InvariantCulture) : "-"),-20} {(k.LastUsed is { } l ? l.ToString("u", CultureInfo.InvariantCulture) : "never"),-20} {(k.Revoked is { } r ? r.ToString("u", CultureInfo.InvariantCulture) : "-")}");
        }

        return text.ToString();
    }

    private static DateTimeOffset? ParseExpiry(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var value)
            ? value
            : throw new CommandRefusedException($"--expires '{text}' is not a date (use 2027-01-31 or 2027-01-31T18:00:00Z)", ExitCodes.Usage);
    }

    private static Task<int> RunAsync(ParseResult parse, CancellationToken ct, Func<ControlClient, Task<TextAnswer>> remote, Func<ApiKeyAdministration, Task<TextAnswer>> local) =>
        ControlOrDatabase.RunAsync(parse, ct, remote, (crm, store) => ApiKeyAdministration.OpenOffline(store, crm.ContentRoot), local);
}
