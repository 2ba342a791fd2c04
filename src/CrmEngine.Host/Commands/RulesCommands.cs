using System.CommandLine;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.Host.Control;
using CrmEngine.Host.Hosting;
using CrmEngine.Rules;
using CrmEngine.Rules.Admin;
using CrmEngine.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;

namespace CrmEngine.Host.Commands;

/// <summary>
/// <c>crm rules test</c> and <c>crm segments list|members|explain|rebuild</c>: through the running service's
/// control channel when it runs, else directly on the stopped database.
/// </summary>
internal static class RulesCommands
{
    public static Command Rules()
    {
        var rules = new Command("rules", "JavaScript rules: try a script before publishing it.");
        var script = new Argument<string>("script") { Description = "A .js file (anywhere), or the name of a loaded segment or event rule." };
        var customer = new Option<string[]>("--customer") { Description = "Customer id (repeatable).", AllowMultipleArgumentsPerToken = true };
        var sample = new Option<int?>("--sample") { Description = "Run against N random customers." };
        var asUser = AsOption("Run as this CRM user: only customers they may read, without the fields hidden from them (absent from the facts). Without it: the machine operator.");
        var test = new Command("test", "Dry run: prints the result, log(...) output, fields read with their values and the budget used. Writes nothing.") { script, customer, sample, asUser };
        test.TreatUnmatchedTokensAsErrors = false;
        test.SetAction((parse, ct) => RunAsync(parse, ct,
            remote => remote.PostAsync<object, TextAnswer>("rules/test", new { script = Path.GetFullPath(parse.GetValue(script)!) is var p && File.Exists(p) ? p : parse.GetValue(script), customers = parse.GetValue(customer) ?? [], sample = parse.GetValue(sample) ?? 0, user = parse.GetValue(asUser) }, ct),
            async local => await RefusedAsAnswer(async () =>
            {
                var (text, ok) = await local.TestAsync(parse.GetValue(script)!, parse.GetValue(customer) ?? [], parse.GetValue(sample) ?? 1, ct,
                    await FactsAsync(local.Stores is { } stores ? new SecurityAdministration(new SecurityDirectory(stores)) : null, parse.GetValue(asUser), ct));
                return new TextAnswer(text, ok);
            })));
        rules.Subcommands.Add(test);
        return rules;
    }

    public static Command Segments()
    {
        var segments = new Command("segments", "Segments: stored membership kept current from the change feed.");
        var list = new Command("list", "Every segment: script version, status (Active/Failed), members, last rebuild, last error; refused scripts.");
        list.TreatUnmatchedTokensAsErrors = false;
        list.SetAction((parse, ct) => RunAsync(parse, ct,
            remote => remote.GetAsync<TextAnswer>("segments", ct),
            async local => new TextAnswer(await local.ListAsync(ct), true)));
        segments.Subcommands.Add(list);

        var name = new Argument<string>("segment") { Description = "Segment name (the script's file name without .js)." };
        var limit = new Option<int?>("--limit") { Description = "At most this many (default 100)." };
        var after = new Option<string?>("--after") { Description = "Continue after this customer id." };
        var members = new Command("members", "Customer ids in the segment, with the script version that decided.") { name, limit, after };
        members.TreatUnmatchedTokensAsErrors = false;
        members.SetAction((parse, ct) => RunAsync(parse, ct,
            remote => remote.GetAsync<TextAnswer>($"segments/{Uri.EscapeDataString(parse.GetValue(name)!)}/members?limit={parse.GetValue(limit) ?? 100}&after={Uri.EscapeDataString(parse.GetValue(after) ?? "")}", ct),
            async local => new TextAnswer(await local.MembersAsync(parse.GetValue(name)!, parse.GetValue(limit) ?? 100, parse.GetValue(after), ct), true)));
        segments.Subcommands.Add(members);

        var segment = new Argument<string>("segment") { Description = "Segment name." };
        var customerId = new Argument<string>("customer") { Description = "Customer id." };
        var explainAs = AsOption("Explain as this CRM user: a customer they may not read is not there, and fields hidden from them are absent from the facts.");
        var explain = new Command("explain", "Why the customer is in or out: the inputs the rule read and what it returned, for the script version that decided.") { segment, customerId, explainAs };
        explain.TreatUnmatchedTokensAsErrors = false;
        explain.SetAction((parse, ct) => RunAsync(parse, ct,
            remote => remote.GetAsync<TextAnswer>($"segments/{Uri.EscapeDataString(parse.GetValue(segment)!)}/explain/{Uri.EscapeDataString(parse.GetValue(customerId)!)}?user={Uri.EscapeDataString(parse.GetValue(explainAs) ?? "")}", ct),
            async local => await RefusedAsAnswer(async () => new TextAnswer(await local.ExplainAsync(parse.GetValue(segment)!, parse.GetValue(customerId)!, ct,
                await FactsAsync(local.Stores is { } stores ? new SecurityAdministration(new SecurityDirectory(stores)) : null, parse.GetValue(explainAs), ct)), true))));
        segments.Subcommands.Add(explain);

        var which = new Argument<string?>("segment") { Description = "Segment name; all segments when left out.", Arity = ArgumentArity.ZeroOrOne };
        var rebuild = new Command("rebuild", "Full rebuild: evaluates every customer and stores the differences.") { which };
        rebuild.TreatUnmatchedTokensAsErrors = false;
        rebuild.SetAction((parse, ct) => RunAsync(parse, ct,
            remote => remote.PostAsync<object, TextAnswer>($"segments/rebuild?segment={Uri.EscapeDataString(parse.GetValue(which) ?? "")}", new { }, ct),
            async local => new TextAnswer(await local.RebuildAsync(parse.GetValue(which), ct), true)));
        segments.Subcommands.Add(rebuild);
        return segments;
    }

    /// <summary>Control-channel routes used by the verbs while the service runs.</summary>
    public static void MapControl(WebApplication app, RulesAdministration rules, SecurityAdministration? security = null)
    {
        app.MapPost("/rules/test", async (RuleTestRequest r, CancellationToken ct) => Results.Json(await RefusedAsAnswer(async () =>
        {
            var (text, ok) = await rules.TestAsync(r.Script, r.Customers ?? [], r.Sample, ct, await FactsAsync(security, r.User, ct));
            return new TextAnswer(text, ok);
        }), ControlJson.Options));
        app.MapGet("/segments", async (CancellationToken ct) => Results.Json(new TextAnswer(await rules.ListAsync(ct), true), ControlJson.Options));
        app.MapGet("/segments/{name}/members", async (string name, int? limit, string? after, CancellationToken ct) =>
            Results.Json(new TextAnswer(await rules.MembersAsync(name, limit ?? 100, string.IsNullOrEmpty(after) ? null : after, ct), true), ControlJson.Options));
        app.MapGet("/segments/{name}/explain/{customer}", async (string name, string customer, string? user, CancellationToken ct) =>
        {
            try
            {
                return Results.Json(new TextAnswer(await rules.ExplainAsync(name, customer, ct, await FactsAsync(security, user, ct)), true), ControlJson.Options);
            }
            catch (ArgumentException ex)
            {
                return Results.Json(new TextAnswer(ex.Message, false), ControlJson.Options, statusCode: 404);
            }
            catch (CommandRefusedException ex)
            {
                return Results.Json(new TextAnswer(ex.Message + "\n", false), ControlJson.Options);
            }
        });
        app.MapPost("/segments/rebuild", async (string? segment, CancellationToken ct) =>
            Results.Json(new TextAnswer(await rules.RebuildAsync(string.IsNullOrEmpty(segment) ? null : segment, ct), true), ControlJson.Options));
    }

    public sealed record RuleTestRequest(string Script, string[]? Customers, int Sample, string? User = null);

    private static Option<string?> AsOption(string description) => new("--as") { Description = description };

    /// <summary>
    /// What <c>--as &lt;user&gt;</c> may see (null without it: the machine operator, who sees everything): the records they may
    /// read (orders and activities too, so the figures count only those) and the fields of customers, orders and activities
    /// hidden from them, judged as the API judges them. An unknown or deactivated user is refused before anything runs.
    /// </summary>
    private static async Task<FactsAccess?> FactsAsync(SecurityAdministration? security, string? user, CancellationToken ct)
    {
        if (await ActingUser.ContextAsync(security, user, m => new CommandRefusedException(m), ct) is not { } access)
        {
            return null;
        }

        return CrmEngine.Api.Resources.SegmentReaders.For(access) ?? new FactsAccess(access.UserId, (_, _, _) => true, _ => [], _ => true);
    }

    /// <summary>A refusal of <c>--as</c> as the command's answer (exit code 1 with the reason), wherever it runs.</summary>
    private static async Task<TextAnswer> RefusedAsAnswer(Func<Task<TextAnswer>> work)
    {
        try
        {
            return await work();
        }
        catch (CommandRefusedException ex)
        {
            return new TextAnswer(ex.Message + "\n", false);
        }
    }

    private static Task<int> RunAsync(ParseResult parse, CancellationToken ct, Func<ControlClient, Task<TextAnswer>> remote, Func<RulesAdministration, Task<TextAnswer>> local) =>
        ControlOrDatabase.RunAsync(parse, ct, remote, (crm, store) =>
        {
            var options = new RulesOptions();
            crm.Root.GetSection(RulesOptions.Section).Bind(options);
            return RulesAdministration.OpenOffline(store, options, crm.ContentRoot);
        }, local, TimeSpan.FromMinutes(30), refusalOnStdout: true);
}
