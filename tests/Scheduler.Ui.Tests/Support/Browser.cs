using System.Diagnostics;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;

namespace Dtask.Ui.Tests.Support;

/// <summary>
/// Headless Chromium from Debian (scripts/install-chromium.sh extracts it into .tools/root when the machine has none),
/// driven over WebDriver by its chromedriver. Never a downloaded browser: the driver and the binary are given by path,
/// and Selenium Manager is told to stay offline.
/// </summary>
public static class Browser
{
    public const int Width = 1280;
    public const int Height = 800;

    public static ChromeDriver Start()
    {
        var tools = RepositoryRoot.Combine(".tools", "root");
        var binary = First(Path.Combine(tools, "usr/lib/chromium/chromium"), "/usr/lib/chromium/chromium")
            ?? throw new InvalidOperationException("no Chromium: run scripts/install-chromium.sh (make test does)");
        var driver = First(Path.Combine(tools, "usr/bin/chromedriver"), "/usr/bin/chromedriver")
            ?? throw new InvalidOperationException("no chromedriver: run scripts/install-chromium.sh (make test does)");
        if (binary.StartsWith(tools, StringComparison.Ordinal))
        {
            // The libraries extracted beside it (the ones this machine lacked).
            var lib = Path.Combine(tools, "usr/lib/x86_64-linux-gnu");
            var path = $"{lib}:{lib}/pulseaudio";
            var current = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
            if (current is null || !current.Contains(lib, StringComparison.Ordinal))
            {
                Environment.SetEnvironmentVariable("LD_LIBRARY_PATH", string.IsNullOrEmpty(current) ? path : $"{path}:{current}");
            }
        }

        Environment.SetEnvironmentVariable("SE_OFFLINE", "true");
        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(driver)!, Path.GetFileName(driver));
        service.SuppressInitialDiagnosticInformation = true;
        service.HideCommandPromptWindow = true;
        var options = new ChromeOptions { BinaryLocation = binary };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", $"--window-size={Width},{Height}",
            "--force-device-scale-factor=1", "--hide-scrollbars", "--lang=en-US", "--no-first-run", "--disable-extensions");
        var chrome = new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
        chrome.Manage().Timeouts().PageLoad = TimeSpan.FromSeconds(20);
        // The viewport itself is Width × Height (the window size includes the browser's own frame).
        chrome.ExecuteCdpCommand("Emulation.setDeviceMetricsOverride", new Dictionary<string, object?>
        {
            ["width"] = Width,
            ["height"] = Height,
            ["deviceScaleFactor"] = 1,
            ["mobile"] = false,
        });
        return chrome;
    }

    private static string? First(params string[] paths) => paths.FirstOrDefault(File.Exists);

    /// <summary>Polls <paramref name="condition"/> (elements may be replaced while it looks) until it holds; false after <paramref name="within"/>.</summary>
    public static async Task<bool> EventuallyAsync(Func<bool> condition, TimeSpan within)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < within)
        {
            try
            {
                if (condition())
                {
                    return true;
                }
            }
            catch (StaleElementReferenceException)
            {
                // Re-rendered under us: look again.
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        return false;
    }

    /// <summary>Writes a screenshot of the viewport to <c>docs/ui/NAME.png</c>.</summary>
    public static void Screenshot(IWebDriver driver, string name)
    {
        var directory = RepositoryRoot.Combine("docs", "ui");
        Directory.CreateDirectory(directory);
        ((ITakesScreenshot)driver).GetScreenshot().SaveAsFile(Path.Combine(directory, name + ".png"));
    }
}
