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
