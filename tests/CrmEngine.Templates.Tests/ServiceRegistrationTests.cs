using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CrmEngine.Templates.Tests;

/// <summary>AddCrmTemplates in a generic host: options from configuration, the folder from the content root, reload while running.</summary>
public sealed class ServiceRegistrationTests
{
    [Fact]
    public async Task The_host_serves_the_templates_folder_of_its_content_root_and_reloads_it()
    {
        using var folder = new TempTemplates(withShipped: true);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = folder.Root, Args = [] });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Templates:Directory"] = "templates",
            ["Templates:ReloadDebounce"] = "00:00:00.050",
            ["Templates:VersionCheckInterval"] = "01:00:00",
        });
        builder.Services.AddCrmTemplates(builder.Configuration);
        using var host = builder.Build();
        await host.StartAsync();
        var templates = host.Services.GetRequiredService<IMailTemplates>();
        Assert.Same(templates, host.Services.GetRequiredService<MailTemplates>());
        Assert.True(templates.Exists("welcome"));
        Assert.Contains("Dear Ana,", templates.Render("welcome", Samples.Sparse()).Text, StringComparison.Ordinal);

        folder.Write("welcome.txt", "Changed for {{ customer.name }}");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (templates.Render("welcome", Samples.Sparse()).Text != "Changed for Ana")
        {
            Assert.True(DateTime.UtcNow < deadline, "the saved template was not reloaded");
            await Task.Delay(50);
        }

        await host.StopAsync();
    }

    [Fact]
    public void Bad_options_stop_the_start_naming_the_key()
    {
        var services = new ServiceCollection();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Templates:LoopLimit"] = "1" }).Build();
        services.AddCrmTemplates(configuration);
        using var provider = services.BuildServiceProvider();
        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<TemplatesOptions>>().Value);
        Assert.Contains("LoopLimit", error.Message, StringComparison.Ordinal);
    }
}
