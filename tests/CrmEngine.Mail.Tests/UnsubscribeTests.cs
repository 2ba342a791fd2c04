using System.Net;
using System.Text.Json;
using CrmEngine.Abstractions.Mail;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Api;
using CrmEngine.Mail.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace CrmEngine.Mail.Tests;

/// <summary>
/// The one-click unsubscribe link over real HTTP (Kestrel on loopback, the mail module mapped as the API maps modules):
/// GET and HEAD change nothing, POST with a valid token withdraws the consent, a forged or tampered token changes nothing.
/// </summary>
public sealed class UnsubscribeTests
{
    private sealed class Site : IAsyncDisposable
    {
        public required WebApplication App { get; init; }
        public required HttpClient Http { get; init; }

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await App.StopAsync();
            await App.DisposeAsync();
        }
    }

    /// <summary>The mail module on a Kestrel server; the API's scopes are stood in by policies that let every call through.</summary>
    private static async Task<Site> ServeAsync(MailWorld world)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelCore().UseUrls("http://127.0.0.1:0");
        builder.Services.AddRoutingCore();
        builder.Services.AddProblemDetails();
        builder.Services.AddAuthorization(o =>
        {
            foreach (var policy in new[] { ApiPolicies.Read, ApiPolicies.Write, ApiPolicies.Admin })
            {
                o.AddPolicy(policy, p => p.RequireAssertion(_ => true));
            }
        });
        var app = builder.Build();
        app.UseAuthorization();
        foreach (var module in world.Services.GetServices<IApiEndpointModule>())
        {
            module.Map(app.MapGroup("/api"), app);
        }

        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new Site { App = app, Http = new HttpClient { BaseAddress = new Uri(address) } };
    }

    private static async Task<(MailWorld World, Customer Customer, string Link)> MarketingSentAsync(TempFolder temp)
    {
        var world = await MailWorld.StartAsync(temp.Path, MailWorld.Settings(temp.Path, smtp: null));
        var customer = await world.CustomerAsync("Märta Öberg", "marta@example.com");
        await world.ConsentAsync(customer.Id, "newsletter", true);
        var result = await world.Outbox.EnqueueAsync(new MailRequest
        {
            Template = "campaign",
            CustomerId = customer.Id,
            Kind = MailKind.Marketing,
            Purpose = "newsletter",
            IdempotencyKey = "campaign:" + customer.Id,
            Model = new Dictionary<string, object?> { ["campaign"] = new Dictionary<string, object?> { ["name"] = "News" } },
        });
        await world.WaitForStateAsync(result.MessageId, MailState.Sent);
        var message = MimeMessage.Load(Path.Combine(world.PickupFolder, result.MessageId + ".eml"));
        var link = message.Headers["List-Unsubscribe"]!.Trim('<', '>');
        return (world, customer, link);
    }

    private static string PathOf(string link) => new Uri(link).PathAndQuery;

    private static async Task<List<ConsentEntry>> ConsentsAsync(MailWorld world, string customerId) =>
        (await world.Store.Consents.FindAsync(IndexedField.CustomerId, customerId)).ToList();

    [Fact]
    public async Task Get_and_head_show_a_confirmation_and_change_nothing_post_withdraws_the_consent()
    {
        using var temp = new TempFolder();
        var (world, customer, link) = await MarketingSentAsync(temp);
        await using var _ = world;
        await using var site = await ServeAsync(world);

        using (var get = await site.Http.GetAsync(PathOf(link)))
        {
            var page = await get.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
            Assert.Equal("text/html", get.Content.Headers.ContentType?.MediaType);
            Assert.Contains("<form method=\"post\"", page, StringComparison.Ordinal);
            Assert.Contains("newsletter", page, StringComparison.Ordinal);
        }

        using (var head = await site.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, PathOf(link))))
        {
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        }

        Assert.Single(await ConsentsAsync(world, customer.Id));

        // RFC 8058: the mail client POSTs List-Unsubscribe=One-Click to the URL of the header.
        using (var post = await site.Http.PostAsync(PathOf(link), new FormUrlEncodedContent([new("List-Unsubscribe", "One-Click")])))
        {
            Assert.Equal(HttpStatusCode.OK, post.StatusCode);
            Assert.Contains("no longer receive", await post.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var entries = await ConsentsAsync(world, customer.Id);
        Assert.Equal(2, entries.Count);
        var withdrawal = entries.Single(e => !e.Granted);
        Assert.Equal("newsletter", withdrawal.Purpose);
        Assert.Equal(ConsentChannel.Email, withdrawal.Channel);
        Assert.Equal("unsubscribe link", withdrawal.Source);

        // Written through the pipeline: in the change feed and the audit log, as actor "unsubscribe".
        var changes = await world.Store.Changes.ReadAsync(0, 1000);
        Assert.Contains(changes, c => c.Entity == EntityNames.Consent && c.EntityId == withdrawal.Id && c.Actor == "unsubscribe");

        // A second click adds nothing; marketing to this customer is now suppressed.
        using (var again = await site.Http.PostAsync(PathOf(link), new FormUrlEncodedContent([new("List-Unsubscribe", "One-Click")])))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }

        Assert.Equal(2, (await ConsentsAsync(world, customer.Id)).Count);
        var next = await world.Outbox.EnqueueAsync(new MailRequest
        {
            Template = "campaign", CustomerId = customer.Id, Kind = MailKind.Marketing, Purpose = "newsletter", IdempotencyKey = "next",
            Model = new Dictionary<string, object?> { ["campaign"] = new Dictionary<string, object?> { ["name"] = "News 2" } },
        });
        Assert.Equal(MailState.Suppressed, next.State);
    }

    [Fact]
    public async Task A_forged_or_tampered_token_is_refused_and_changes_nothing()
    {
        using var temp = new TempFolder();
        var (world, customer, link) = await MarketingSentAsync(temp);
        await using var _ = world;
        await using var site = await ServeAsync(world);
        var token = Uri.UnescapeDataString(new Uri(link).Query["?token=".Length..]);
        var dot = token.IndexOf('.', StringComparison.Ordinal);

        // The payload of another customer with the original signature; a flipped signature; garbage; no token.
        var otherPayload = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"v1\u001Fx\u001F{customer.Id}X\u001Fnewsletter"))
            .TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var flipped = token[..^2] + (token[^2] == 'A' ? 'B' : 'A') + token[^1];
        var forged = new[] { otherPayload + token[dot..], flipped, "abc.def", "", token[..dot] };
        foreach (var bad in forged)
        {
            var path = "/unsubscribe?token=" + Uri.EscapeDataString(bad);
            using var post = await site.Http.PostAsync(path, new FormUrlEncodedContent([new("List-Unsubscribe", "One-Click")]));
            Assert.Equal(HttpStatusCode.BadRequest, post.StatusCode);
            using var get = await site.Http.GetAsync(path);
            Assert.Equal(HttpStatusCode.BadRequest, get.StatusCode);
            Assert.DoesNotContain("<form", await get.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var entries = await ConsentsAsync(world, customer.Id);
        Assert.Single(entries);
        Assert.True(entries[0].Granted);
    }

    [Fact]
    public async Task The_api_lists_shows_and_retries_messages()
    {
        using var temp = new TempFolder();
        var (world, customer, _) = await MarketingSentAsync(temp);
        await using var __ = world;
        await using var site = await ServeAsync(world);

        var list = JsonDocument.Parse(await site.Http.GetStringAsync("/api/mail/messages?state=sent")).RootElement;
        var first = Assert.Single(list.EnumerateArray());
        Assert.Equal("Sent", first.GetProperty("state").GetString());
        Assert.Equal(customer.Id, first.GetProperty("customerId").GetString());
        var id = first.GetProperty("id").GetString()!;

        var show = JsonDocument.Parse(await site.Http.GetStringAsync($"/api/mail/messages/{id}")).RootElement;
        Assert.Contains("Märta Öberg", show.GetProperty("snapshot").GetString(), StringComparison.Ordinal);

        using var bad = await site.Http.GetAsync("/api/mail/messages?state=lost");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("unknown state 'lost'", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var missing = await site.Http.GetAsync("/api/mail/messages/nope");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using var sentAlready = await site.Http.PostAsync($"/api/mail/messages/{id}/retry", null);
        Assert.Equal(HttpStatusCode.Conflict, sentAlready.StatusCode);
        Assert.Contains("sent already", await sentAlready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
