using System.Net;
using CrmEngine.Abstractions.Model;

namespace CrmEngine.Webhooks.Tests;

/// <summary>SSRF protection: without Webhooks:AllowPrivateTargets, loopback/private/link-local targets are refused.</summary>
public class TargetTests
{
    private static readonly Dictionary<string, string?> Strict = new() { ["Webhooks:AllowPrivateTargets"] = "false" };

    [Theory]
    [InlineData("127.0.0.1", "loopback")]
    [InlineData("10.1.2.3", "private")]
    [InlineData("172.20.0.1", "private")]
    [InlineData("192.168.1.10", "private")]
    [InlineData("169.254.169.254", "link-local")]
    [InlineData("100.64.0.1", "carrier-grade NAT")]
    [InlineData("0.0.0.0", "this network")]
    [InlineData("::1", "loopback")]
    [InlineData("fd00::1", "unique local")]
    [InlineData("fe80::1", "link-local")]
    [InlineData("::ffff:127.0.0.1", "loopback")]
    [InlineData("64:ff9b::a00:1", "private")]
    public void Non_public_addresses_are_named(string address, string kind) =>
        Assert.Contains(kind, TargetGuard.Describe(IPAddress.Parse(address)), StringComparison.Ordinal);

    [Theory]
    [InlineData("93.184.216.34")]
    [InlineData("8.8.8.8")]
    [InlineData("2606:4700::1111")]
    public void Public_addresses_pass(string address) => Assert.Null(TargetGuard.Describe(IPAddress.Parse(address)));

    [Theory]
    [InlineData("http://127.0.0.1:8080/hook")]
    [InlineData("http://localhost/hook")]
    [InlineData("http://[::1]/hook")]
    [InlineData("http://169.254.169.254/latest/meta-data")]
    [InlineData("https://10.0.0.5/hook")]
    public async Task A_subscription_to_a_private_address_is_refused_naming_the_switch(string url)
    {
        await using var engine = await TestEngine.StartAsync(settings: Strict);
        using var response = await engine.Client.PostAsync("/api/webhooks", Json.Body($$"""{"url":"{{url}}","events":["*"]}"""));
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("\"url\"", text, StringComparison.Ordinal);
        Assert.Contains("Webhooks:AllowPrivateTargets", text, StringComparison.Ordinal);
        Assert.Empty(engine.Webhooks.List());
    }

    [Fact]
    public async Task A_delivery_whose_host_resolves_to_a_private_address_is_refused_at_connect_and_parked_without_retries()
    {
        await using var receiver = await Receiver.StartAsync();
        var folder = TestEngine.NewFolder();
        string id;
        // Saved while private targets were allowed (as a host name the text check cannot judge) ...
        await using (var engine = await TestEngine.StartAsync(folder))
        {
            (id, _) = await engine.SubscribeAsync(receiver.Url().Replace("127.0.0.1", "localhost", StringComparison.Ordinal), "customer.*");
        }

        // ... and delivered after the switch was turned off: the resolved address is checked when connecting.
        await using (var engine = await TestEngine.StartAsync(folder, Strict))
        {
            await engine.Store.Customers.CreateAsync(new Customer { Name = "Never leaves" });
            await Eventually.WaitAsync(async () => (await engine.DeliveriesAsync(id)).Any(d => d.GetProperty("state").GetString() == "parked"),
                "the delivery is parked", explain: () => engine.Logs.Errors);
            var delivery = Assert.Single(await engine.DeliveriesAsync(id));
            Assert.Equal(1, delivery.GetProperty("attempts").GetInt32());
            var error = delivery.GetProperty("lastError").GetString()!;
            Assert.Contains("refused", error, StringComparison.Ordinal);
            Assert.Contains("loopback", error, StringComparison.Ordinal);
            Assert.Contains("Webhooks:AllowPrivateTargets", error, StringComparison.Ordinal);
            Assert.Empty(receiver.Requests);
        }
    }
}

/// <summary>Webhooks:AllowedHosts: named receivers and address ranges allowed even though private, everything else still refused.</summary>
public class AllowedHostsTests
{
    [Theory]
    [InlineData("127.0.0.0/8", "127.0.0.1")]
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("localhost", "localhost")]
    public async Task A_listed_range_or_name_is_accepted_and_delivered_to(string allowed, string host)
    {
        await using var receiver = await Receiver.StartAsync();
        await using var engine = await TestEngine.StartAsync(settings: new()
        {
            ["Webhooks:AllowPrivateTargets"] = "false",
            ["Webhooks:AllowedHosts:0"] = "erp.internal.example",
            ["Webhooks:AllowedHosts:1"] = allowed,
        });
        var (id, _) = await engine.SubscribeAsync(receiver.Url().Replace("127.0.0.1", host, StringComparison.Ordinal), "customer.*");
        await engine.Store.Customers.CreateAsync(new Customer { Name = "Goes to the allowed host" });
        await Eventually.WaitAsync(async () => (await engine.DeliveriesAsync(id)).Any(d => d.GetProperty("state").GetString() == "delivered"),
            "the delivery reaches the allowed receiver", explain: () => engine.Logs.Errors);
        Assert.Single(receiver.Delivered);

        // Not in the list: still refused, naming both switches.
        using var refused = await engine.Client.PostAsync("/api/webhooks", Json.Body("""{"url":"http://10.9.8.7/hook","events":["*"]}"""));
        var text = await refused.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("Webhooks:AllowedHosts", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_name_does_not_allow_other_names_that_resolve_to_the_same_private_address_at_connect()
    {
        var policy = new TargetPolicy(false, ["erp.internal.example", "10.20.0.0/16"]);
        Assert.True(policy.AllowsName("ERP.internal.example"));
        Assert.False(policy.AllowsName("localhost"));
        Assert.True(policy.AllowsAddress(IPAddress.Parse("10.20.3.4")));
        Assert.True(policy.AllowsAddress(IPAddress.Parse("::ffff:10.20.3.4")));
        Assert.False(policy.AllowsAddress(IPAddress.Parse("10.21.0.1")));
        var ex = await Assert.ThrowsAsync<TargetRefusedException>(async () => await TargetGuard.ConnectAsync("localhost", 9, policy, CancellationToken.None));
        Assert.Contains("Webhooks:AllowedHosts", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("10.0.0.0/33")]
    [InlineData("not a host!")]
    [InlineData("fe80::/200")]
    public async Task A_bad_entry_stops_the_start_naming_it(string entry)
    {
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => TestEngine.StartAsync(settings: new() { ["Webhooks:AllowedHosts:0"] = entry }));
        Assert.Contains("Webhooks:AllowedHosts:0", ex.ToString(), StringComparison.Ordinal);
        Assert.Contains(entry, ex.ToString(), StringComparison.Ordinal);
    }
}
